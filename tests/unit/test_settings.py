"""Configuration errors name the file, the key and what was expected."""

from pathlib import Path

import pytest

from pos_loyalty.settings import ConfigError, load_settings, settings_from_dict

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_config_is_valid() -> None:
    settings = load_settings(REPO / "config.toml", environ={})
    assert settings.store.id == "msk-001"
    assert settings.store.locale == "ru_RU"
    assert settings.database_url == f"sqlite:///{REPO / 'pos_loyalty.db'}"


def test_environment_overrides_database_and_config_path(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nid = "s1"\nname = "Shop"\n')
    env = {"POS_LOYALTY_CONFIG": str(path), "POS_LOYALTY_DATABASE_URL": "postgresql://u@h/db"}
    settings = load_settings(None, environ=env)
    assert settings.store.id == "s1"
    assert settings.database_url == "postgresql://u@h/db"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[store]\nid = "s1"\nname = "Shop"\nlocale = "xx_YY"\n', "store.locale: unknown locale"),
        ('[store]\nid = "s1"\nname = "Shop"\ncolour = "red"\n', "store.colour: unknown key"),
        ('[store]\nname = "Shop"\n', "store.id: required key is missing"),
        ('[store]\nid = "s1"\nname = "Shop"\n[api]\nport = "eighty"\n', "api.port:"),
        (
            '[store]\nid = "s1"\nname = "Shop"\ndatabase_url = "mysql://x"\n',
            "store.database_url: expected 'sqlite:///path.db'",
        ),
        (
            '[store]\nid = "s1"\nname = "S"\n[[lanes]]\nid = "a"\n[[lanes]]\nid = "a"\n',
            "lanes: lane id 'a' is used twice",
        ),
        ('[store\nid = "s1"\n', "not valid TOML"),
    ],
)
def test_bad_config_is_refused_with_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert str(path) in str(err.value)
    assert any(expected in problem for problem in err.value.problems), err.value.problems


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "nope.toml", environ={})
    assert err.value.problems == ["file not found"]


def test_environment_overrides_secret_and_store_id_without_touching_the_input(
    tmp_path: Path,
) -> None:
    data = {"store": {"id": "s1", "name": "Shop"}}
    env = {"POS_LOYALTY_SECRET_FILE": "/srv/keys/secret.key", "POS_LOYALTY_STORE_ID": "spb-002"}
    settings = settings_from_dict(data, source=str(tmp_path / "config.toml"), environ=env)
    assert settings.secret_path == Path("/srv/keys/secret.key")
    assert settings.store.id == "spb-002"
    assert data == {"store": {"id": "s1", "name": "Shop"}}  # the caller's dict is not rewritten


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[store]\nid = "s1"\nname = "Shop"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={"POS_LOYALTY_DATABASE_URL": "mysql://x/y"})
    assert err.value.problems == [
        "store.database_url (from POS_LOYALTY_DATABASE_URL): expected 'sqlite:///path.db' or "
        "'postgresql+psycopg://user@host/db', got 'mysql'"
    ]


def test_store_that_is_not_a_table_is_refused_with_an_override_set(tmp_path: Path) -> None:
    path = write(tmp_path, 'store = "shop"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={"POS_LOYALTY_DATABASE_URL": "sqlite:///x.db"})
    assert any(problem.startswith("store: ") for problem in err.value.problems), err.value
