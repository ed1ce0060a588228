"""The migrations form one line.

Two branches that each add a revision after the same parent leave two heads, and then `db upgrade`
refuses to run at every store (a merge of two branches did exactly that).
"""

from alembic.config import Config
from alembic.script import ScriptDirectory

from pos_loyalty.storage.migrate import MIGRATIONS_DIR


def scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def test_the_migrations_have_one_head() -> None:
    heads = scripts().get_heads()
    assert len(heads) == 1, f"migrations fork into heads {sorted(heads)}: chain one after the other"


def test_every_revision_has_at_most_one_child() -> None:
    children: dict[str, list[str]] = {}
    for script in scripts().walk_revisions():
        for parent in script._all_down_revisions:
            children.setdefault(parent, []).append(script.revision)
    forks = {parent: sorted(kids) for parent, kids in children.items() if len(kids) > 1}
    assert forks == {}
