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
