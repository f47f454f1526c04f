"""Code the tests share (imported as ``tests.support.…``): Docker fixtures, a local
Zenodo stand-in, deposit bundles, the hostile corpus, and small test studies."""
