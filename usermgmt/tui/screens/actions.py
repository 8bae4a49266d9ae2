"""Actions on one user, shared by the users screen and the detail screen.

Each action is one core call, made here through the screen's ConsoleContext.
Dialogs only collect: a confirmation is dismissed with yes or no, a form
submits its data here and stays open until the call answers (a validation
error lands in the form; see ``screens.form``). Destructive ones ask first.

With users marked (the users screen), lock, unlock, delete, restore and sign
out act on all of them: one confirmation naming the count, the core's bulk call
in chunks in a worker (progress through ``bulk_progress``), one toast with the
outcome (``screens.bulk``). A user found gone (deleted elsewhere) is not acted
on: the action says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from textual.app import App
from textual.binding import Binding

from usermgmt.core.errors import Conflict, DomainError, NotFound
from usermgmt.core.results import BulkOutcome
from usermgmt.core.schemas import UserOut
from usermgmt.tui.context import ConsoleContext, Job
from usermgmt.tui.screens import bulk
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
# Actions that act on every marked user when some are marked.
ON_MARKED = {"lock_user", "unlock_user", "delete_user", "restore_user", "revoke_sessions"}


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

    def marked_users(self) -> list[UserOut]:
        """The users marked to act on together (none on a screen without marks)."""
        return []

    def gone_reason(self, user: UserOut) -> str | None:
        """Why ``user`` is no longer in the list (``deleted elsewhere``), if known."""
        return None

    def user_gone(self, user: UserOut, reason: str) -> None:
        """The core said ``user`` is gone: show it as such (and reload)."""
        self.user_changed(None)

    def bulk_progress(self, text: str | None) -> None:
        """Show how far a bulk action got (None: it ended)."""

    def bulk_done(self, verb: bulk.Verb, outcome: BulkOutcome) -> None:
        """A bulk action ended (reload once)."""
        self.user_changed(None)

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
        marked = self.marked_users()
        if marked and action in ON_MARKED:
            locked = all(self.ctx.is_locked(u) for u in marked)
            if action == "lock_user":
                return not locked
            if action == "unlock_user":
                return locked
            if action == "restore_user":
                return any(u.deleted_at is not None for u in marked)
            return True
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
        elif reason := self.gone_reason(user):
            self.app.notify(f"{user.email}: {reason}; nothing done.", severity="warning")
            return None
        return user

    def _refused(self, user: UserOut | None, exc: DomainError) -> bool:
        """The core says the user is gone (NotFound) or changed (Conflict): say so about
        this user and show the list as it is now."""
        if user is None or not isinstance(exc, (NotFound, Conflict)):
            return False
        if isinstance(exc, NotFound):
            self.app.notify(f"{user.email}: deleted elsewhere; nothing done.", severity="warning")
            self.user_gone(user, "deleted elsewhere")
        else:
            self.app.notify(f"{user.email}: {exc.message}.", severity="warning")
            self.user_changed(user)
        return True

    def _core(self, job: Job[R], done: Callable[[R], Any], user: UserOut | None = None) -> None:
        # Writes are never exclusive: a second action must not drop the first one's result.
        self.ctx.run(
            self,  # type: ignore[arg-type]
            job,
            done,
            failed=lambda exc: self._refused(user, exc),
            group="user-action",
            exclusive=False,
        )

    def _save(
        self,
        form: FormScreen[Any, R],
        job: Job[R],
        told: Callable[[R], str],
        user: UserOut | None = None,
    ) -> None:
        """A form's core call, its worker owned by the form: on success, say what was
        done and close the form with the result; a refusal goes back to the form, but
        for ``user`` gone: the form closes and says so."""

        def done(result: R) -> None:
            self.app.notify(told(result))
            form.dismiss(result)

        def failed(exc: DomainError) -> bool:
            if user is not None and isinstance(exc, NotFound):
                form.dismiss(None)
                return self._refused(user, exc)
            return form.refused(exc)

        self.ctx.run(form, job, done, failed=failed, group="form", exclusive=False)

    # ---- many users at once -------------------------------------------------------

    def _bulk(self, action: str, users: list[UserOut]) -> None:
        """One confirmation naming the count, then the core's bulk call in chunks."""
        verb = bulk.VERBS[action]
        title, message = bulk.confirmation(verb, users)

        def answered(yes: bool | None) -> None:
            if yes:
                self._run_bulk(verb, users)

        self.app.push_screen(ConfirmScreen(title, message, verb.title), answered)

    def _run_bulk(self, verb: bulk.Verb, users: list[UserOut]) -> None:
        ctx, app = self.ctx, self.app
        ids = [str(u.id) for u in users]
        request = ctx.request_context()  # one request id for the whole action
        self.bulk_progress(bulk.progress(verb, 0, len(ids)))

        def job(s) -> tuple[BulkOutcome, DomainError | None]:
            outcome = BulkOutcome()
            for start in range(0, len(ids), bulk.CHUNK):
                chunk = ids[start : start + bulk.CHUNK]
                try:
                    part = s.users.bulk(ctx.actor, request, verb.action, chunk)
                except DomainError as exc:  # the database went away: stop, say how far
                    return outcome, exc
                outcome.done += part.done
                outcome.failed += part.failed
                told = bulk.progress(verb, start + len(chunk), len(ids))
                app.call_from_thread(self.bulk_progress, told)
            return outcome, None

        def done(result: tuple[BulkOutcome, DomainError | None]) -> None:
            outcome, stopped = result
            self.bulk_progress(None)
            failed = bool(outcome.failed or stopped)
            text = bulk.outcome_text(verb, users, outcome, stopped)
            app.notify(text, severity="warning" if failed else "information")
            if stopped is not None:
                ctx.show_error(stopped)
            self.bulk_done(verb, outcome)

        ctx.run(self, job, done, group="bulk", exclusive=False)  # type: ignore[arg-type]

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
            form.user,
        )

    def _form_done(self, user: UserOut | None) -> None:
        if user is not None:
            self.user_changed(user)

    def action_delete_user(self) -> None:
        if marked := self.marked_users():
            return self._bulk("delete", marked)
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
                user,
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
        if marked := self.marked_users():
            return self._bulk("restore", marked)
        user = self._need_user()
        if user is None:
            return
        ctx, uid = self.ctx, str(user.id)
        self._core(
            lambda s: s.users.restore(ctx.actor, ctx.request_context(), uid),
            lambda restored: self._done(f"Restored {user.email}.", restored),
            user,
        )

    def action_lock_user(self) -> None:
        from usermgmt.tui.screens.lock import LockScreen

        if marked := self.marked_users():
            return self._bulk("lock", marked)
        if user := self._need_user():
            self.app.push_screen(LockScreen(user, submit=self._lock), self._form_done)

    def _lock(self, form: LockScreen, minutes: int | None) -> None:
        ctx, uid = self.ctx, str(form.user.id)
        how = f"for {minutes} minutes" if minutes else "until unlocked"
        self._save(
            form,
            lambda s: s.users.lock(ctx.actor, ctx.request_context(), uid, minutes),
            lambda user: f"Locked {user.email} {how}.",
            form.user,
        )

    def action_unlock_user(self) -> None:
        if marked := self.marked_users():
            return self._bulk("unlock", marked)
        user = self._need_user()
        if user is None:
            return
        ctx, uid = self.ctx, str(user.id)
        self._core(
            lambda s: s.users.unlock(ctx.actor, ctx.request_context(), uid),
            lambda unlocked: self._done(f"Unlocked {user.email}.", unlocked),
            user,
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

        self._save(form, job, lambda what: what, form.user)

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
            form.user,
        )

    def action_revoke_sessions(self) -> None:
        if marked := self.marked_users():
            return self._bulk("sign_out", marked)
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
                user,
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
