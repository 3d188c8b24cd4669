import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
application = get_wsgi_application()

# Everything loaded so far lives as long as the process. Frozen, the cyclic collector never walks
# it again, so a full collection no longer pauses a request for tens of milliseconds.
gc.collect()
gc.freeze()
