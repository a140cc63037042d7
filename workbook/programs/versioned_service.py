"""Lab 06's API, plus a response header X-App-Version that names the release (APP_VERSION).

Chapter 9 copies this file into each release's build context as versioned.py, on top of lab 06's image
(`FROM workbook/ch09-api:base`), and gunicorn serves `versioned:app`. It imports lab 06's app.py, so it
runs on that image only. APP_VERSION is read at start-up: without it the service does not start, which
the chapter's broken release 3 relies on (a copy of this file that reads APP_VERISON instead).
"""

import os

from app import app

RELEASE = os.environ["APP_VERSION"]


@app.after_request
def release_header(response):
    response.headers["X-App-Version"] = RELEASE
    return response
