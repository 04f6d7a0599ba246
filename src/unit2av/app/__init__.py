"""``unit2av app``: review face boxes and dub in the browser.

- ``workspace``: the folders the app may touch (``--root``, ``--models``, its work folder) and the model choices;
- ``session``: one tab's video, boxes, edits, undo and save, and the pictures of them (no UI);
- ``strip``: the timeline strip and its click-to-frame mapping;
- ``dub``: the render through ``unit2av.render`` with the tab's boxes, plus the demo's preview and spectrogram;
- ``translate_dub``: the whole dub (mAV-HuBERT -> UTUT -> render, ``unit2av.pipeline.dub``) with the tab's boxes,
  its models loaded once per app (``pipeline.models.ModelCache``);
- ``ui``, ``layout``, ``dub_panel``: the Gradio page (needs ``pip install 'unit2av[app]'``); only these import Gradio;
- ``reply``: errors as the status line, shared by the page's event handlers;
- ``page``: the page's static text (title, legend, the script that keeps the two players in step, CSS).
"""
