// One control per page to reveal (or hide again) every solution kept in a dropdown.
// Jupyter Book adds every .js file in _static/ to every page; this one only acts on pages that
// have collapsed solutions (sphinx-togglebutton marks them .toggle-hidden).
document.addEventListener("DOMContentLoaded", function () {
  // sphinx-togglebutton sets up its buttons on DOMContentLoaded too: wait for it
  window.setTimeout(function () {
    var buttons = document.querySelectorAll(".solution .toggle-button, .dropdown.admonition .toggle-button");
    if (buttons.length === 0) return;
    var control = document.createElement("button");
    control.className = "probdl-reveal-solutions btn btn-sm";
    control.type = "button";
    var shown = false;
    function label() {
      control.textContent = (shown ? "Hide" : "Show") + " all " + buttons.length + " solutions";
    }
    label();
    control.addEventListener("click", function () {
      shown = !shown;
      document.querySelectorAll(".solution .toggle-button, .dropdown.admonition .toggle-button").forEach(function (b) {
        var box = b.closest(".admonition") || b.parentElement;
        var hidden = box.classList.contains("toggle-hidden");
        if (hidden === shown) b.click();
      });
      label();
    });
    var main = document.querySelector("main#main-content article") || document.querySelector("article") || document.body;
    main.insertBefore(control, main.firstChild);
  }, 0);
});
