from base64 import *  # noqa: F401,F403  (pybase64 is a faster drop-in for base64)
