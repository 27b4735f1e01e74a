// The figures' hover: a mark of an SVG figure that carries a data-tip (a bar, a point)
// shows it beside the pointer at once. The marks' <title> elements are what a browser
// without this script shows; with it they are moved into the marks' labels, so the
// browser's own tooltip does not appear on top of this one.
(function () {
  "use strict";
  var box = document.createElement("div");
  box.id = "tip";
  box.setAttribute("role", "tooltip");
  box.hidden = true;
  document.body.appendChild(box);
  var marks = document.querySelectorAll("svg.figure [data-tip]");
  for (var i = 0; i < marks.length; i++) {
    var title = marks[i].querySelector("title");
    if (title) {
      marks[i].setAttribute("aria-label", title.textContent);
      title.parentNode.removeChild(title);
    }
  }
  function mark(node) {
    while (node && node.nodeType === 1) {
      if (node.hasAttribute("data-tip")) return node;
      node = node.parentNode;
    }
    return null;
  }
  function place(event) {
    var x = event.clientX + 14, y = event.clientY + 14;
    var width = box.offsetWidth, height = box.offsetHeight;
    if (x + width > window.innerWidth - 4) x = Math.max(4, event.clientX - width - 14);
    if (y + height > window.innerHeight - 4) y = Math.max(4, event.clientY - height - 14);
    box.style.left = x + "px";
    box.style.top = y + "px";
  }
  document.addEventListener("mouseover", function (event) {
    var found = mark(event.target);
    if (!found) return;
    box.textContent = found.getAttribute("data-tip");
    box.hidden = false;
    place(event);
  });
  document.addEventListener("mousemove", function (event) {
    if (!box.hidden) place(event);
  });
  document.addEventListener("mouseout", function (event) {
    if (mark(event.target) && !mark(event.relatedTarget)) box.hidden = true;
  });
})();
