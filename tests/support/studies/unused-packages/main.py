"""Uses one package of its crowded virtualenv."""
import six

with open("answer.txt", "w") as fh:
    fh.write(f"six {six.__version__} says {six.ensure_text(b'hello')}\n")
