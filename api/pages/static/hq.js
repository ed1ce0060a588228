// Head-office console: a program file chosen in `input[data-fills]` is read into the text area it
// names, so the form posts text (and the server checks it as text, like a pasted program).
(function () {
  "use strict";
  document.querySelectorAll("input[type=file][data-fills]").forEach(function (input) {
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      var target = document.getElementById(input.dataset.fills);
      if (!file || !target) { return; }
      file.text().then(function (text) { target.value = text; });
    });
  });
})();
