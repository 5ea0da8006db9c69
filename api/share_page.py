"""The share landing page, rendered on the server: the social platforms'
crawlers read its Open Graph and Twitter card tags and run no JavaScript, and a
person's browser goes on to the shopper page by meta refresh (a link too)."""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<meta name="description" content="{description}">
<meta property="og:type" content="website">
<meta property="og:title" content="{title}">
<meta property="og:description" content="{description}">
<meta property="og:url" content="{url}">
<meta name="twitter:card" content="{card}">
<meta name="twitter:title" content="{title}">
<meta name="twitter:description" content="{description}">
{image}<meta http-equiv="refresh" content="0; url={target}">
<link rel="canonical" href="{url}">
</head>
<body>
<main>
<h1>{title}</h1>
<p>{description}</p>
<p><a href="{target}">Open the activity</a></p>
</main>
</body>
</html>
"""

_MISSING = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link not found</title></head>
<body><main><h1>This share link does not exist</h1>
<p>The link may be mistyped or cut short. Ask whoever shared it to send it again.</p>
</main></body>
</html>
"""


def landing(
    title: str, description: str, url: str, target: str, image: str | None = None
) -> HTMLResponse:
    """``url``: the landing page's own absolute URL; ``target``: the shopper page;
    ``image``: an absolute URL for the card (the activity's banner), if any."""
    tags = ""
    if image:
        src = escape(image)
        tags = f'<meta property="og:image" content="{src}">\n'
        tags += f'<meta name="twitter:image" content="{src}">\n'
    body = _PAGE.format(
        title=escape(title),
        description=escape(description),
        url=escape(url),
        target=escape(target),
        card="summary_large_image" if image else "summary",
        image=tags,
    )
    # Crawlers cache the card; the page itself is cheap, so a short max-age.
    return HTMLResponse(body, headers={"Cache-Control": "public, max-age=60"})


def missing() -> HTMLResponse:
    return HTMLResponse(_MISSING, status_code=404)
