"""通讯录: the emergency numbers of the user's sites (110/120/119 and each
site's own, by kind), from :mod:`server.phone_book`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from server import phone_book, sites
from server.templating import render


async def contacts_page(request: Request) -> Response:
    """Every number of each of the user's sites, grouped by kind; kept offline."""
    user = request.state.user
    if user is None:
        return RedirectResponse("/login?next=/contacts", status_code=303)
    book = await phone_book.book(await sites.member_sites(user))
    return render(request, "contacts.html", book=book)


routes = [
    Route("/contacts", contacts_page, methods=["GET"], include_in_schema=False),
]
