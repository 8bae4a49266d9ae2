def test_admin_created_on_both(admin_user, services, backend):
    assert admin_user.roles == ["admin"]
    assert services.db.dialect == ("sqlite" if backend == "sqlite" else "postgresql")
