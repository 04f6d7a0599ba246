"""Static text of the ``unit2av app`` page: title, legend, the player-sync script and the style sheet."""

TITLE = "unit2av: review face boxes and dub"
LEGEND = (
    "Timeline: green = box, dark red = no box in the detected/loaded boxes, orange = set to None by an edit, "
    "grey = no boxes yet; "
    "red tint over thumbnails = frames without a box. Click the strip twice to pick a range "
    "(both frames included); ranges are typed START:END, end exclusive, as in `unit2av bbox edit --none`."
)
# Keeps the original player in step with the dubbed one (the dubbed player leads; the original is muted).
SYNC_JS = """<script>
(() => {
  const pair = () => [document.querySelector('#u2av-cmp-orig video'), document.querySelector('#u2av-dub video')];
  const follow = (ev) => {
    const [orig, dub] = pair();
    if (!orig || !dub || ev.target !== dub) return;
    orig.muted = true;
    orig.playbackRate = dub.playbackRate;
    if (Math.abs(orig.currentTime - dub.currentTime) > 0.08 && dub.currentTime <= (orig.duration || 0))
      orig.currentTime = dub.currentTime;
    if (ev.type === 'play' || ev.type === 'playing') orig.play().catch(() => {});
    if (ev.type === 'pause' || ev.type === 'ended') orig.pause();
  };
  for (const t of ['play', 'playing', 'pause', 'seeked', 'ratechange', 'ended', 'timeupdate'])
    document.addEventListener(t, follow, true);
})();
</script>"""
CSS = "#u2av-strip img { width: 100%; height: auto; cursor: crosshair; } footer { display: none !important; }"
