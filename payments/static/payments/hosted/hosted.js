/* PayWave hosted payment page: status polling, the PIX countdown, the copy button.
   No framework, no third-party requests; the page works (by reloading) without it. */
(function () {
  "use strict";

  var POLL_MS = 1500;
  var REDIRECT_MS = 4000;
  var main = document.getElementById("hosted");
  if (!main || !main.dataset.statusUrl) {
    return;
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function hide(id) {
    var element = byId(id);
    if (element) {
      element.hidden = true;
    }
  }

  // The payer may stop the automatic return (WCAG 2.2.1): "Stay on this page".
  function goBackLater(url) {
    if (!url) {
      return;
    }
    var timer = window.setTimeout(function () {
      window.location.assign(url);
    }, REDIRECT_MS);
    var stay = byId("stay-button");
    if (stay) {
      stay.hidden = false;
      stay.addEventListener("click", function () {
        window.clearTimeout(timer);
        stay.hidden = true;
        hide("redirect-note");
      });
    }
  }

  function showFinal(state) {
    main.dataset.status = state.status;
    main.dataset.final = "true";
    var status = byId("status");
    status.className = "status status-" + state.status;
    byId("status-text").textContent = state.label || state.status;
    ["pix", "action", "waiting"].forEach(hide);
    var outcome = byId("outcome");
    var heading = byId("outcome-heading");
    if (state.paid) {
      heading.textContent = outcome.dataset.textPaid;
    } else if (state.status === "expired") {
      heading.textContent = outcome.dataset.textExpired;
    } else {
      heading.textContent = outcome.dataset.textOther;
    }
    if (state.redirect) {
      main.dataset.redirect = state.redirect;
      var link = byId("return-link");
      link.href = state.redirect;
      link.hidden = false;
      byId("redirect-note").hidden = false;
    }
    outcome.hidden = false;
    goBackLater(state.redirect);
  }

  function poll() {
    fetch(main.dataset.statusUrl, {
      headers: { Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (state) {
        if (state.final) {
          showFinal(state);
        } else if (state.status !== main.dataset.status) {
          // A new step (QR code ready, bank confirmation asked): the server draws it.
          window.location.reload();
        } else {
          window.setTimeout(poll, POLL_MS);
        }
      })
      .catch(function () {
        window.setTimeout(poll, POLL_MS * 2);
      });
  }

  function startCountdown() {
    var clock = byId("pix-countdown");
    if (!clock || !clock.dataset.expiresAt) {
      return;
    }
    var expiresAt = parseInt(clock.dataset.expiresAt, 10) * 1000;
    function tick() {
      var left = Math.max(0, Math.floor((expiresAt - Date.now()) / 1000));
      var minutes = Math.floor(left / 60);
      var seconds = left % 60;
      clock.textContent = (minutes < 10 ? "0" : "") + minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
      if (left > 0) {
        window.setTimeout(tick, 1000);
      }
    }
    tick();
  }

  function copyWithSelection(field) {
    field.focus();
    field.select();
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  function setUpCopy() {
    var button = byId("copy-button");
    var field = byId("pix-code");
    var feedback = byId("copy-feedback");
    if (!button || !field) {
      return;
    }
    button.addEventListener("click", function () {
      function done(copied) {
        feedback.textContent = copied ? button.dataset.copied : button.dataset.copyFailed;
      }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(
          function () {
            done(true);
          },
          function () {
            done(copyWithSelection(field));
          }
        );
      } else {
        done(copyWithSelection(field));
      }
    });
  }

  setUpCopy();
  startCountdown();
  if (main.dataset.final === "true") {
    goBackLater(main.dataset.redirect);
  } else {
    window.setTimeout(poll, POLL_MS);
  }
})();
