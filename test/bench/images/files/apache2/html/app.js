document.addEventListener("DOMContentLoaded", () => { document.title += " (loaded)"; });
