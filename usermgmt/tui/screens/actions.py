"""Actions on one user, shared by the users screen and the detail screen.

Each action is one core call (forms and dialogs make theirs themselves, so a
validation error stays in the form). Destructive ones ask first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.binding import Binding

from usermgmt.core.schemas import UserOut
from usermgmt.tui.screens.confirm import ConfirmScreen

if TYPE_CHECKING:
    from usermgmt.tui.app import UserMgmtApp

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
    """Mixin for a Screen with a current user. Subclasses implement the two hooks below."""

    app: UserMgmtApp

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
        locked = user.locked_until is not None and user.locked_until > self.app.now()
        return (True, user.deleted_at is not None, locked)

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
        locked = user.locked_until is not None and user.locked_until > self.app.now()
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

    def _core(self, job, done) -> None:
        # Writes are never exclusive: a second action must not drop the first one's result.
        self.app.run_core(self, job, done, group="user-action", exclusive=False)  # type: ignore[arg-type]

    # ---- the actions ---------------------------------------------------------------

    def action_new_user(self) -> None:
        from usermgmt.tui.screens.user_form import UserFormScreen

        self.app.push_screen(UserFormScreen(), self._form_done)

    def action_edit_user(self) -> None:
        from usermgmt.tui.screens.user_form import UserFormScreen

        if user := self._need_user():
            self.app.push_screen(UserFormScreen(user), self._form_done)

    def _form_done(self, user: UserOut | None) -> None:
        if user is not None:
            self.user_changed(user)

    def action_delete_user(self) -> None:
        user = self._need_user()
        if user is None:
            return
        uid = str(user.id)

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            self._core(
                lambda: self.app.services.users.delete(
                    self.app.actor, self.app.request_context(), uid
                ),
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
        self._core(
            lambda: self.app.services.users.restore(
                self.app.actor, self.app.request_context(), str(user.id)
            ),
            lambda restored: self._done(f"Restored {user.email}.", restored),
        )

    def action_lock_user(self) -> None:
        from usermgmt.tui.screens.lock import LockScreen

        if user := self._need_user():
            self.app.push_screen(LockScreen(user), self._form_done)

    def action_unlock_user(self) -> None:
        user = self._need_user()
        if user is None:
            return
        self._core(
            lambda: self.app.services.users.unlock(
                self.app.actor, self.app.request_context(), str(user.id)
            ),
            lambda unlocked: self._done(f"Unlocked {user.email}.", unlocked),
        )

    def action_password(self) -> None:
        from usermgmt.tui.screens.password import PasswordScreen

        if user := self._need_user():
            self.app.push_screen(PasswordScreen(user), self._password_done)

    def _password_done(self, message: str | None) -> None:
        if message:
            self.user_changed(None)

    def action_roles(self) -> None:
        from usermgmt.tui.screens.roles import RolesScreen

        if user := self._need_user():
            self.app.push_screen(RolesScreen(user), self._form_done)

    def action_revoke_sessions(self) -> None:
        user = self._need_user()
        if user is None:
            return
        uid = str(user.id)

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            self._core(
                lambda: self.app.services.sessions.revoke_all(
                    self.app.actor, self.app.request_context(), uid
                ),
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
