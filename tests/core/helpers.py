"""Small builders shared by the core tests."""

from usermgmt.core.context import Actor

STRONG = "Corr3ct-Horse-Battery"


def make_user(services, operator, ctx, email, roles=("user",), password=STRONG, **extra):
    data = {"email": email, "password": password, "roles": list(roles), **extra}
    return services.users.create(operator, ctx, data)


def login(services, ctx, email, password=STRONG):
    return services.auth.login(ctx, {"email": email, "password": password})


def actor_of(services, result) -> Actor:
    return services.auth.authenticate_token(result.tokens.access_token)


# A name a terminal would obey if it were printed raw: clear the screen, turn red,
# a one-character CSI (C1), a right-to-left override, Rich/Textual markup, DEL.
HOSTILE_NAME = "\x1b[2J\x1b[31mEve\x9b1m\u202e[red]markup[/red] [link=https://evil.example]x\x7f"
# The same as every face shows it.
HOSTILE_SHOWN = (
    "\\x1b[2J\\x1b[31mEve\\x9b1m\\u202e[red]markup[/red] [link=https://evil.example]x\\x7f"
)


def store_raw(services, user_id, **columns) -> None:
    """Write user (or profile) columns straight through the ORM, past every write rule:
    rows stored before the rules, or by another program."""
    from usermgmt.core.models import User

    with services.db.write() as s:
        user = s.get(User, user_id)
        for name, value in columns.items():
            setattr(user if hasattr(User, name) else user.profile, name, value)
