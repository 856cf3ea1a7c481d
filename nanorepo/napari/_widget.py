"""The dock widget: an image's threads, jump to a region, post a drawn shape as a thread.

It works on the layers the reader made, whose ``metadata["nanorepo"]["regions"]`` names
the service, dataset version and image of their threads:

* the list shows every thread of the chosen image that the user may see (region threads
  jump to their region on double-click or *Go to region*; resolved ones are marked);
* *Draw a region* selects the image's threads layer in rectangle mode, making it first if
  the image had no region threads (the reader makes no empty one);
* *Post new thread* turns the selected shape the user drew into the threads layer (or the
  only new one) into the region anchor the service stores (world nm -> nm from the image's
  origin, :meth:`ImageGeometry.shape_anchor`, with the current ``z`` plane and ``t`` point
  of a stack) and posts it with the title and comment; the service records the token's
  user as the author, and colleagues see the thread in JupyterLab at once;
* *Reply* posts the comment to the selected thread.

Plain Qt widgets through qtpy (napari's own abstraction over PyQt and PySide), because a
list with per-item data and a multi-line editor are what the task needs; magicgui would
add a layer without saving code. Errors from the service (no token, no permission, a bad
shape) show in the widget's status line with the service's hint, never as a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from nanorepo.errors import InvalidInput, NanorepoError
from nanorepo.napari._geometry import ImageGeometry
from nanorepo.napari._regions import (
    FEATURE_DEFAULTS,
    STATUS_COLORS,
    RegionSource,
    edge_width_nm,
    feature_columns,
    region_layer,
    region_shapes,
)
from nanorepo.settings import Settings

if TYPE_CHECKING:
    import napari
    from napari.layers import Shapes

__all__ = ["ThreadsWidget", "nanorepo_images", "regions_layer"]


def nanorepo_images(viewer: napari.Viewer) -> dict[str, dict[str, Any]]:
    """The nanorepo images in ``viewer`` whose threads a service holds, by the label the
    widget shows (``DATASET / IMAGE``), with their layer metadata, in layer order."""
    out: dict[str, dict[str, Any]] = {}
    for layer in viewer.layers:
        info = layer.metadata.get("nanorepo")
        if isinstance(info, dict) and info.get("regions"):
            out.setdefault(_label(info), info)
    return out


def regions_layer(viewer: napari.Viewer, info: dict[str, Any]) -> Shapes | None:
    """The threads layer of the image ``info`` describes, if it has one."""
    from napari.layers import Shapes

    for layer in viewer.layers:
        other = layer.metadata.get("nanorepo")
        if isinstance(layer, Shapes) and isinstance(other, dict) and _label(other) == _label(info):
            return layer
    return None


def _label(info: dict[str, Any]) -> str:
    return f"{info['dataset']} / {info['image']}"


class ThreadsWidget(QWidget):
    """The nanorepo threads dock widget of a napari viewer.

    Parameters
    ----------
    napari_viewer:
        The viewer (napari passes it when the widget is opened from the Plugins menu).
    settings:
        Where the token comes from (default: the environment).
    """

    def __init__(self, napari_viewer: napari.Viewer, *, settings: Settings | None = None):
        super().__init__()
        self.viewer = napari_viewer
        self.settings = settings or Settings.from_env()
        self._threads: list[dict[str, Any]] = []
        self._info: dict[str, Any] | None = None

        self.image_box = QComboBox()
        self.thread_list = QListWidget()
        self.goto_button = QPushButton("Go to region")
        self.refresh_button = QPushButton("Refresh")
        self.draw_button = QPushButton("Draw a region")
        self.title_edit = QLineEdit()
        self.title_edit.setPlaceholderText("Title of a new thread")
        self.body_edit = QPlainTextEdit()
        self.body_edit.setPlaceholderText("Comment (Markdown)")
        self.body_edit.setMaximumHeight(110)
        self.post_button = QPushButton("Post new thread for the drawn shape")
        self.reply_button = QPushButton("Reply to the selected thread")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        layout = QVBoxLayout()
        layout.addWidget(QLabel("Image"))
        layout.addWidget(self.image_box)
        layout.addWidget(QLabel("Threads (double-click to go to a region)"))
        layout.addWidget(self.thread_list)
        row = QHBoxLayout()
        row.addWidget(self.goto_button)
        row.addWidget(self.refresh_button)
        layout.addLayout(row)
        layout.addWidget(self.draw_button)
        layout.addWidget(self.title_edit)
        layout.addWidget(self.body_edit)
        layout.addWidget(self.post_button)
        layout.addWidget(self.reply_button)
        layout.addWidget(self.status)
        self.setLayout(layout)

        self.image_box.currentIndexChanged.connect(lambda _: self._image_changed())
        self.thread_list.itemDoubleClicked.connect(lambda _: self._safely(self.go_to))
        self.thread_list.currentRowChanged.connect(lambda _: self._highlight())
        self.goto_button.clicked.connect(lambda: self._safely(self.go_to))
        self.refresh_button.clicked.connect(lambda: self._safely(self.refresh))
        self.draw_button.clicked.connect(lambda: self._safely(self.draw_region))
        self.post_button.clicked.connect(lambda: self._safely(self.post_thread))
        self.reply_button.clicked.connect(lambda: self._safely(self.reply))
        self.viewer.layers.events.inserted.connect(self._layers_changed)
        self.viewer.layers.events.removed.connect(self._layers_changed)
        self._layers_changed()

    # -- state --------------------------------------------------------------------------

    @property
    def layer(self) -> Shapes | None:
        """The threads layer of the chosen image (``None`` until it has region threads or
        a region is drawn: an image without any gets no empty layer)."""
        return regions_layer(self.viewer, self._info) if self._info else None

    @property
    def threads(self) -> list[dict[str, Any]]:
        """The chosen image's threads as the service listed them."""
        return list(self._threads)

    def _chosen(self) -> tuple[dict[str, Any], ImageGeometry, RegionSource]:
        info = self._info
        if info is None:
            raise InvalidInput(
                "no nanorepo image with threads is open",
                hint="open one with nanorepo://ACCESSION/IMAGE (File > Open, or "
                "`nanorepo view`), with NANOREPO_URL set so threads can be read",
            )
        return (
            info,
            ImageGeometry.from_json(info["geometry"]),
            RegionSource.from_json(info["regions"]),
        )

    def ensure_layer(self) -> Shapes:
        """The chosen image's threads layer, made (empty) if it has none yet."""
        info, geometry, _ = self._chosen()
        layer = regions_layer(self.viewer, info)
        if layer is None:
            from napari.layers import Layer

            data = region_layer(
                [], geometry, name=f"{info['image']} · threads", metadata={"nanorepo": info}
            )
            layer = self.viewer.add_layer(Layer.create(*data))
        layer.current_edge_color = STATUS_COLORS["new"]
        return layer

    def draw_region(self) -> None:
        """Select the threads layer in rectangle mode, to draw the region of a new thread."""
        layer = self.ensure_layer()
        self.viewer.layers.selection.active = layer
        layer.mode = "add_rectangle"
        self._say("draw the region (switch to an ellipse or polygon in the layer controls)")

    def _layers_changed(self, event: Any = None) -> None:
        images = nanorepo_images(self.viewer)
        current = _label(self._info) if self._info else None
        self.image_box.blockSignals(True)
        self.image_box.clear()
        for label in images:
            self.image_box.addItem(label)
        self.image_box.blockSignals(False)
        if current in images:  # still there: no need to read its threads again
            self.image_box.blockSignals(True)
            self.image_box.setCurrentIndex(list(images).index(current))
            self.image_box.blockSignals(False)
        elif images:
            self.image_box.setCurrentIndex(0)
            self._image_changed()
        else:
            self._info = None
            self._threads = []
            self.thread_list.clear()

    def _image_changed(self) -> None:
        images = nanorepo_images(self.viewer)
        self._info = images.get(self.image_box.currentText())
        if self._info is None:
            return
        problem = self._info.get("regions_error")
        self._safely(lambda: self.refresh(make_layer=False))
        if problem and not self._threads:
            self._say(f"threads could not be read: {problem}")

    def select_image(self, image: str) -> None:
        """Choose the image (its name, or ``DATASET / IMAGE`` as the list shows it)."""
        for i in range(self.image_box.count()):
            text = self.image_box.itemText(i)
            if text == image or text.endswith(f" / {image}"):
                self.image_box.setCurrentIndex(i)
                return
        raise InvalidInput(f"no open nanorepo image {image!r}")

    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _safely(self, action: Callable[[], object]) -> None:
        """Run a button's action; errors go to the status line with their hint."""
        try:
            action()
        except NanorepoError as exc:
            self._say(f"{exc.message}" + (f" ({exc.hint})" if exc.hint else ""))

    # -- reading --------------------------------------------------------------------------

    def refresh(self, *, make_layer: bool = True) -> None:
        """Read the image's threads again and redraw its threads layer.

        Shapes drawn but not posted yet are kept. ``make_layer``: make the threads layer
        if the image has region threads and no layer yet (not while layers of a reader
        are still being added, which bring their own).
        """
        info, geometry, source = self._chosen()
        threads = source.threads(self.settings)
        self._threads = threads
        layer = regions_layer(self.viewer, info)
        if layer is None and make_layer and region_shapes(threads, geometry)[0]:
            layer = self.ensure_layer()
        if layer is not None:
            self._redraw(layer, geometry, threads)
        self.thread_list.clear()
        for t in threads:
            anchor = t.get("anchor") or {}
            n = int(t.get("post_count", 0))
            item = QListWidgetItem(
                f"#{t['id']} {t['title']} — {t.get('created_by', '?')}, "
                f"{n} post{'' if n == 1 else 's'}"
                + ("" if anchor.get("kind") == "region" else f" · about the {anchor.get('kind')}")
                + (" · resolved" if t.get("status") == "resolved" else "")
            )
            item.setData(Qt.ItemDataRole.UserRole, int(t["id"]))
            if t.get("status") == "resolved":
                item.setForeground(Qt.GlobalColor.gray)
            self.thread_list.addItem(item)
        self._say(
            f"{len(threads)} threads on {source.accession}@v{source.version} / {source.image}"
        )

    def _redraw(
        self, layer: Shapes, geometry: ImageGeometry, threads: list[dict[str, Any]]
    ) -> None:
        data, kinds, features = region_shapes(threads, geometry)
        old = layer.features
        keep = [i for i, t in enumerate(old["thread"]) if int(t) == 0] if len(old) else []
        for i in keep:
            data.append(np.asarray(layer.data[i]))
            kinds.append(layer.shape_type[i])
            for key in features:
                features[key].append(old[key].iloc[i])
        layer.selected_data = set()
        layer.data = list(zip(data, kinds, strict=True))
        if data:
            layer.edge_color = [
                STATUS_COLORS.get(s, STATUS_COLORS["open"]) for s in features["status"]
            ]
            layer.edge_width = [edge_width_nm(geometry)] * len(data)
        layer.features = feature_columns(features)
        layer.feature_defaults = dict(FEATURE_DEFAULTS)
        layer.current_edge_color = STATUS_COLORS["new"]
        layer.refresh()

    def _selected_thread(self) -> int:
        item = self.thread_list.currentItem()
        if item is None:
            raise InvalidInput("select a thread in the list first")
        return int(item.data(Qt.ItemDataRole.UserRole))

    def _shape_index(self, thread_id: int) -> int | None:
        layer = self.layer
        if layer is None or not len(layer.features):
            return None
        ids = [int(t) for t in layer.features["thread"]]
        return ids.index(thread_id) if thread_id in ids else None

    def _highlight(self) -> None:
        item = self.thread_list.currentItem()
        layer = self.layer
        if item is None or layer is None:
            return
        i = self._shape_index(int(item.data(Qt.ItemDataRole.UserRole)))
        layer.selected_data = {i} if i is not None else set()

    def go_to(self, thread_id: int | None = None) -> None:
        """Centre the view on a thread's region (the selected one by default), zoomed so
        that it fills about half the canvas, on the region's plane of a stack."""
        thread_id = self._selected_thread() if thread_id is None else int(thread_id)
        _, geometry, _ = self._chosen()
        layer = self.layer
        i = self._shape_index(thread_id)
        if layer is None or i is None:
            raise InvalidInput(f"thread #{thread_id} is not about a region of this image")
        v = np.asarray(layer.data[i])[:, -2:]
        lo, hi = v.min(0), v.max(0)
        camera = self.viewer.scene.camera
        camera.center = (float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2))
        size = np.maximum(hi - lo, 1e-9)
        canvas = np.asarray(self.viewer.canvas.size, dtype=float)
        camera.zoom = float(0.5 * np.min(canvas / size))
        thread = next((t for t in self._threads if int(t["id"]) == thread_id), None)
        anchor = (thread or {}).get("anchor") or {}
        if "z" in anchor and "z" in geometry.spatial_dims:
            z0, z1 = anchor["z"]
            plane = geometry.plane_index("z", (z0 + z1) / 2 + geometry.origin("z"))
            self.viewer.dims.set_point(self._axis("z", geometry), geometry.plane_world("z", plane))
        self._say(f"thread #{thread_id}")

    def _axis(self, axis: str, geometry: ImageGeometry) -> int:
        dims = geometry.spatial_dims
        return self.viewer.dims.ndim - len(dims) + dims.index(axis)

    # -- writing --------------------------------------------------------------------------

    def _new_shape(self, layer: Shapes) -> int:
        ids = [int(t) for t in layer.features["thread"]] if len(layer.features) else []
        new = [i for i, t in enumerate(ids) if t == 0]
        chosen = [i for i in sorted(layer.selected_data) if i in new]
        if len(chosen) == 1:
            return chosen[0]
        if not chosen and len(new) == 1:
            return new[0]
        raise InvalidInput(
            "select the one shape to post"
            if new
            else "draw a rectangle, ellipse or polygon into the threads layer first",
            hint=f"the layer {layer.name!r} holds {len(new)} new shapes",
        )

    def post_thread(self, title: str | None = None, body: str | None = None) -> dict[str, Any]:
        """Post the drawn shape as a new region thread; returns the thread as created.

        ``title`` and ``body`` default to the widget's fields.
        """
        _, geometry, source = self._chosen()
        layer = self.layer
        if layer is None:
            raise InvalidInput(
                "draw the region first", hint="press 'Draw a region', then drag a rectangle"
            )
        title = (self.title_edit.text() if title is None else title).strip()
        body = (self.body_edit.toPlainText() if body is None else body).strip()
        if not title or not body:
            raise InvalidInput("a new thread needs a title and a comment")
        i = self._new_shape(layer)
        planes: dict[str, int] = {
            axis: geometry.plane_index(
                axis, float(self.viewer.dims.point[self._axis(axis, geometry)])
            )
            for axis in ("z", "t")
            if axis in geometry.spatial_dims
        }
        anchor = geometry.shape_anchor(layer.shape_type[i], layer.data[i], planes=planes)
        created = source.create(title, body, anchor, self.settings)
        layer.features.loc[i, "thread"] = int(created["id"])  # now posted: not kept as new
        self.title_edit.clear()
        self.body_edit.clear()
        self.refresh()
        self._say(f"posted thread #{created['id']} as {created.get('created_by', '?')}")
        return created

    def reply(self, body: str | None = None, thread_id: int | None = None) -> dict[str, Any]:
        """Post ``body`` (default: the comment field) to a thread (default: the selected
        one); returns the post."""
        thread_id = self._selected_thread() if thread_id is None else int(thread_id)
        _, _, source = self._chosen()
        body = (self.body_edit.toPlainText() if body is None else body).strip()
        if not body:
            raise InvalidInput("write a comment first")
        post = source.reply(thread_id, body, self.settings)
        self.body_edit.clear()
        self.refresh()
        self._say(f"replied to thread #{thread_id}")
        return post
