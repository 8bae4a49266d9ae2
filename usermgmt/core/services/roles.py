"""Roles: list, grant, revoke, set. Nobody changes their own roles; the last admin stays."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import PermissionDenied, ValidationError
from usermgmt.core.models import Role
from usermgmt.core.schemas import RoleOut, RolesIn, UserOut, parse, user_out
from usermgmt.core.services.accounts import set_roles
from usermgmt.core.services.base import ServiceBase, load_user, parse_uuid
from usermgmt.core.vocabulary import ROLE_NAMES


class RoleService(ServiceBase):
    def list(self, actor: Actor) -> list[RoleOut]:
        actor.require_authenticated()
        with self.db.read() as s:
            rows = s.execute(select(Role).order_by(Role.name)).scalars()
            return [RoleOut(name=r.name, description=r.description) for r in rows]

    def grant(self, actor: Actor, ctx: RequestContext, user_id: str, role: str) -> UserOut:
        return self._change(actor, ctx, user_id, lambda current: current | {_role(role)})

    def revoke(self, actor: Actor, ctx: RequestContext, user_id: str, role: str) -> UserOut:
        return self._change(actor, ctx, user_id, lambda current: current - {_role(role)})

    def set(self, actor: Actor, ctx: RequestContext, user_id: str, roles) -> UserOut:
        names = parse(RolesIn, roles if isinstance(roles, dict) else {"roles": list(roles)}).roles
        return self._change(actor, ctx, user_id, lambda _current: set(names))

    def _change(self, actor: Actor, ctx: RequestContext, user_id: str, compute) -> UserOut:
        actor.require_admin("roles:manage")
        uid = parse_uuid(user_id)
        if uid is not None and actor.is_self(uid) and not actor.is_operator:
            raise PermissionDenied("You cannot change your own roles")
        with self.db.write() as s:
            now = self.clock.now()
            user = load_user(s, user_id, for_update=True)
            before = set(user.roles)
            after = compute(before)
            if after == before:
                return user_out(user, now)
            set_roles(s, actor, user, after, now=now)
            user.updated_at = now
            s.flush()
            self.record_event(
                s,
                actor,
                ctx,
                "user.roles_changed",
                user.id,
                {"roles": {"before": sorted(before), "after": sorted(after)}},
            )
            return user_out(user, now)


def _role(name: str) -> str:
    name = name.strip().lower()
    if name not in ROLE_NAMES:
        raise ValidationError.for_field("role", f"Unknown role; one of {', '.join(ROLE_NAMES)}")
    return name


def role_names(values: Iterable[str]) -> list[str]:
    return sorted({_role(v) for v in values})
