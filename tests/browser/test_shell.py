import pytest

from apps.tenants.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo

from .conftest import login, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_demo_login_reaches_the_workspace_shell(page, live_server):
    seed_demo()
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url
    screenshot(page, "login")
    login(page, live_server, DEMO_EMAIL, DEMO_PASSWORD)
    assert page.url.endswith("/t/demo/inbox/")
    assert page.locator(".nav-link.is-active").inner_text().strip() == "Inbox"
    assert page.locator(".conv-row").count() >= 3
    screenshot(page, "shell-inbox")
    for label, path, heading in (("Contacts", "/t/demo/contacts/", "Contacts"),
                                 ("Templates", "/t/demo/templates/", "Message templates"),
                                 ("Settings", "/t/demo/settings/", "Settings"),
                                 ("Campaigns", "/t/demo/campaigns/", "Campaigns")):
        page.click(f".nav-link:has-text('{label}')")
        page.wait_for_url(f"**{path}")
        assert page.locator("h1").inner_text().strip() == heading
        assert page.locator(".nav-link.is-active").inner_text().strip() == label
    page.click(".nav-link:has-text('Contacts')")
    assert page.locator("td:has-text('Maya Patel')").is_visible()


def test_wrong_password_is_explained(page, live_server):
    seed_demo()
    login(page, live_server, DEMO_EMAIL, "not-the-password")
    assert "/accounts/login/" in page.url
    assert page.locator(".alert-error").is_visible()
