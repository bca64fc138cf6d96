"""One Chalice Blueprint per feature (hes, lake, bridge); ``chalice_app/app.py`` registers them."""
