import gc, os

def rss():
    with open(f"/proc/{os.getpid()}/statm") as h:
        return int(h.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024**2

def test_probe(make_napari_viewer, qtbot):
    from napari_bnadapt._widgets.launch import open_workbench
    bench = open_workbench(make_napari_viewer())
    widget = bench.widgets["Segment and adapt"]
    widget.target.value = bench.viewer.layers["target EM"]
    widget.segment_after.value = False
    widget.patches.value = 8
    out = []
    for i in range(1, 301):
        widget.adapt()
        qtbot.waitUntil(lambda: not widget.runner.running, timeout=60000)
        widget.reset()
        if i in (5, 50, 100, 150, 200, 250, 300):
            gc.collect(); out.append((i, round(rss())))
    print("RSS", out)
