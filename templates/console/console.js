// vypusk console: upload files one by one with a progress bar (the form also works without
// this script, as a plain multipart upload). Each file is PUT raw and streamed by the server,
// so multi-GiB files need no browser memory beyond the file handle.
"use strict";
(function () {
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest) { return; }
  var input = document.getElementById("upload-input");
  var bar = document.getElementById("upload-progress");
  var status = document.getElementById("upload-status");
  var button = document.getElementById("upload-button");
  var csrf = form.querySelector("input[name=csrf]").value;
  // The page's words, in its language: "%name%" and "%reason%" are filled in here.
  var storedText = form.getAttribute("data-stored");
  var failedText = form.getAttribute("data-failed");
  var ofText = form.getAttribute("data-of");

  function human(bytes) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i++; }
    return (i === 0 ? bytes : bytes.toFixed(1)) + " " + units[i];
  }

  form.addEventListener("submit", function (event) {
    var files = Array.prototype.slice.call(input.files || []);
    if (files.length === 0) { return; }
    event.preventDefault();
    var total = files.reduce(function (sum, f) { return sum + f.size; }, 0) || 1;
    var sent = 0;
    button.disabled = true;
    bar.hidden = false;
    bar.value = 0;

    function next(i) {
      if (i >= files.length) {
        status.textContent = storedText.replace("%count%", String(files.length));
        window.location.assign(form.getAttribute("data-done"));
        return;
      }
      var file = files[i];
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", form.getAttribute("data-upload") + encodeURIComponent(file.name));
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = function (e) {
        var done = sent + (e.lengthComputable ? e.loaded : 0);
        bar.value = done / total;
        status.textContent = file.name + ": " + human(done) + " " + ofText + " " + human(total);
      };
      xhr.onload = function () {
        if (xhr.status >= 200 && xhr.status < 300) {
          sent += file.size;
          bar.value = sent / total;
          next(i + 1);
        } else {
          var message = "HTTP " + xhr.status;
          try { message = JSON.parse(xhr.responseText).Message || message; } catch (e) { /* not JSON */ }
          status.textContent = failedText.replace("%name%", file.name).replace("%reason%", message);
          button.disabled = false;
        }
      };
      xhr.onerror = function () {
        status.textContent = failedText.replace("%name%", file.name).replace("%reason%", "—");
        button.disabled = false;
      };
      xhr.send(file);
    }
    next(0);
  });
}());
