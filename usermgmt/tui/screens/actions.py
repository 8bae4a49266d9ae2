"""Actions on one user, shared by the users screen and the detail screen.

Each action is one core call, made here through the screen's ConsoleContext.
Dialogs only collect: a confirmation is dismissed with yes or no, a form
submits its data here and stays open until the call answers (a validation
error lands in the form; see ``screens.form``). Destructive ones ask first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from textual.app import App
from textual.binding import Binding

from usermgmt.core.schemas import UserOut
from usermgmt.tui.context import ConsoleContext, Job
from usermgmt.tui.screens.confirm import ConfirmScreen
from usermgmt.tui.screens.form import FormScreen

if TYPE_CHECKING:
    from usermgmt.tui.screens.lock import LockScreen
    from usermgmt.tui.screens.password import PasswordScreen
    from usermgmt.tui.screens.roles import RolesScreen
    from usermgmt.tui.screens.user_form import UserFormScreen

R = TypeVar("R")

USER_ACTION_BINDINGS = [
    Binding("n", "new_user", "New", tooltip="New user (without a password: an invitation)"),
    Binding("e", "edit_user", "Edit", tooltip="Edit email, username, names, profile, flags"),
    Binding("d", "delete_user", "Delete", tooltip="Delete (soft; asks first; r restores)"),
    Binding("r", "restore_user", "Restore", tooltip="Restore a deleted user"),
    Binding("l", "lock_user", "Lock", tooltip="Lock: no sign-in, signed out (asks first)"),
    Binding("l", "unlock_user", "Unlock", tooltip="Unlock, and forget failed sign-ins"),
    Binding("p", "password", "Password", tooltip="Set a password, or email a reset link"),
    Binding("g", "roles", "Roles", tooltip="Grant or revoke user, moderator, admin"),
    Binding("s", "revoke_sessions", "Sign out", tooltip="Revoke every session (asks first)"),
]

# Actions that make no sense on a deleted user (the core would say NotFound).
NOT_ON_DELETED = {"edit_user", "delete_user", "lock_user", "unlock_user", "password", "roles"}


class UserActions:
    """Mixin for a Screen with a current user and a ``ctx``. Subclasses implement the
    two hooks below."""

    app: App[Any]
    ctx: ConsoleContext

    def current_user(self) -> UserOut | None:
        raise NotImplementedError

    def user_changed(self, user: UserOut | None) -> None:
        """Called after an action succeeded, with the new state when the core returned it."""
        raise NotImplementedError

    # ---- which keys apply to the highlighted user ---------------------------------

    def action_state(self) -> tuple[bool, bool, bool]:
        """What decides which user keys apply: (a user highlighted, deleted, locked)."""
        user = self.current_user()
        if user is None:
            return (False, False, False)
        return (True, user.deleted_at is not None, self.ctx.is_locked(user))

    def user_loading(self) -> bool:
        """True while the highlighted row is still being fetched (keys stay as they are)."""
        return False

    def refresh_user_bindings(self) -> None:
        """Refresh the footer only when the applicable keys change: rebuilding it on every
        cursor move costs a recompose (and memory churn) per keystroke."""
        if self.user_loading():
            return
        state = self.action_state()
        if state != getattr(self, "_binding_state", None):
            self._binding_state = state
            self.refresh_bindings()  # type: ignore[attr-defined]

    def check_user_action(self, action: str) -> bool | None:
        user = self.current_user()
        if user is None:
            return action not in ("restore_user", "unlock_user")
        deleted = user.deleted_at is not None
        if action == "restore_user":
            return deleted
        if deleted and action in NOT_ON_DELETED:
            return False
        locked = self.ctx.is_locked(user)
        if action == "lock_user":
            return not locked
        if action == "unlock_user":
            return locked
        return True

    def _need_user(self) -> UserOut | None:
        user = self.current_user()
        if user is None:
            self.app.notify("No user is highlighted yet.", severity="warning")
        return user

    def _core(self, job: Job[R], done: Callable[[R], Any]) -> None:
        # Writes are never exclusive: a second action must not drop the first one's result.
        self.ctx.run(self, job, done, group="user-action", exclusive=False)  # type: ignore[arg-type]

    def _save(self, form: FormScreen[Any, R], job: Job[R], told: Callable[[R], str]) -> None:
        """A form's core call, its worker owned by the form: on success, say what was
        done and close the form with the result; a refusal goes back to the form."""

        def done(result: R) -> None:
            self.app.notify(told(result))
            form.dismiss(result)

        self.ctx.run(form, job, done, failed=form.refused, group="form", exclusive=False)

    # ---- the actions ---------------------------------------------------------------

    def action_new_user(self) -> None:
        from usermgmt.tui.screens.user_form import UserFormScreen

        self.app.push_screen(UserFormScreen(submit=self._create_user), self._form_done)

    def _create_user(self, form: UserFormScreen, data: dict[str, Any]) -> None:
        ctx = self.ctx
        how = "" if "password" in data else " An invitation email is on its way."
        self._save(
            form,
            lambda s: s.users.create(ctx.actor, ctx.request_context(), data),
            lambda user: f"Created {user.email}.{how}",
        )

    def action_edit_user(self) -> None:
        from usermgmt.tui.screens.user_form import UserFormScreen

        if user := self._need_user():
            self.app.push_screen(UserFormScreen(user, submit=self._update_user), self._form_done)

    def _update_user(self, form: UserFormScreen, changes: dict[str, Any]) -> None:
        ctx = self.ctx
        assert form.user is not None
        uid = str(form.user.id)
        self._save(
            form,
            lambda s: s.users.update(ctx.actor, ctx.request_context(), uid, changes),
            lambda user: f"Saved {user.email}.",
        )

    def _form_done(self, user: UserOut | None) -> None:
        if user is not None:
            self.user_changed(user)

    def action_delete_user(self) -> None:
        user = self._need_user()
        if user is None:
            return
        ctx, uid = self.ctx, str(user.id)

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            self._core(
                lambda s: s.users.delete(ctx.actor, ctx.request_context(), uid),
                lambda _none: self._done(f"Deleted {user.email}.", None),
            )

        self.app.push_screen(
            ConfirmScreen(
                "Delete user?",
                f"{user.email} will be soft-deleted: hidden from the list, signed out "
                "everywhere, unable to sign in. Restore it with r (x shows deleted users).",
                "Delete",
            ),
            answered,
        )

    def action_restore_user(self) -> None:
        user = self._need_user()
        if user is None:
            return
        ctx, uid = self.ctx, str(user.id)
        self._core(
            lambda s: s.users.restore(ctx.actor, ctx.request_context(), uid),
            lambda restored: self._done(f"Restored {user.email}.", restored),
        )

    def action_lock_user(self) -> None:
        from usermgmt.tui.screens.lock import LockScreen

        if user := self._need_user():
            self.app.push_screen(LockScreen(user, submit=self._lock), self._form_done)

    def _lock(self, form: LockScreen, minutes: int | None) -> None:
        ctx, uid = self.ctx, str(form.user.id)
        how = f"for {minutes} minutes" if minutes else "until unlocked"
        self._save(
            form,
            lambda s: s.users.lock(ctx.actor, ctx.request_context(), uid, minutes),
            lambda user: f"Locked {user.email} {how}.",
        )

    def action_unlock_user(self) -> None:
        user = self._need_user()
        if user is None:
            return
        ctx, uid = self.ctx, str(user.id)
        self._core(
            lambda s: s.users.unlock(ctx.actor, ctx.request_context(), uid),
            lambda unlocked: self._done(f"Unlocked {user.email}.", unlocked),
        )

    def action_password(self) -> None:
        from usermgmt.tui.screens.password import PasswordScreen

        if user := self._need_user():
            self.app.push_screen(PasswordScreen(user, submit=self._password), self._password_done)

    def _password(self, form: PasswordScreen, password: str | None) -> None:
        """Set ``password``, or (None) email a reset link; the form is dismissed with
        what was done."""
        ctx, uid, email = self.ctx, str(form.user.id), form.user.email
        if password is None:

            def job(s) -> str:
                s.users.send_reset_link(ctx.actor, ctx.request_context(), uid)
                return f"Reset link queued for {email}."
        else:

            def job(s) -> str:
                s.users.set_password(ctx.actor, ctx.request_context(), uid, password)
                return f"Password of {email} set; sessions revoked."

        self._save(form, job, lambda what: what)

    def _password_done(self, message: str | None) -> None:
        if message:
            self.user_changed(None)

    def action_roles(self) -> None:
        from usermgmt.tui.screens.roles import RolesScreen

        if user := self._need_user():
            screen = RolesScreen(user, self.ctx.role_descriptions, submit=self._set_roles)
            self.app.push_screen(screen, self._form_done)

    def _set_roles(self, form: RolesScreen, roles: list[str]) -> None:
        ctx, uid = self.ctx, str(form.user.id)
        before, after = set(form.user.roles), set(roles)
        granted, revoked = sorted(after - before), sorted(before - after)
        summary = "; ".join(
            part
            for part in (
                f"granted {', '.join(granted)}" if granted else "",
                f"revoked {', '.join(revoked)}" if revoked else "",
            )
            if part
        )
        self._save(
            form,
            lambda s: s.roles.set(ctx.actor, ctx.request_context(), uid, roles),
            lambda user: f"Roles of {user.email}: {summary}.",
        )

    def action_revoke_sessions(self) -> None:
        user = self._need_user()
        if user is None:
            return
        ctx, uid = self.ctx, str(user.id)

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            self._core(
                lambda s: s.sessions.revoke_all(ctx.actor, ctx.request_context(), uid),
                lambda count: self._done(
                    f"Revoked {count} session{'s' if count != 1 else ''} of {user.email}.", None
                ),
            )

        self.app.push_screen(
            ConfirmScreen(
                "Revoke all sessions?",
                f"{user.email} is signed out on every device; their refresh tokens stop "
                "working at once.",
                "Revoke",
            ),
            answered,
        )

    def _done(self, message: str, user: Any) -> None:
        self.app.notify(message)
        self.user_changed(user)
