// The analyst console's few interactions: label a case, score a transaction.
"use strict";
(function () {
  const key = document.querySelector('meta[name="fraud-api-key"]').content;
  function headers() {
    const h = {"Content-Type": "application/json"};
    if (key) { h["X-API-Key"] = key; }
    return h;
  }
  async function label(button) {
    const card = button.closest(".case");
    const body = {labels: [{transaction_id: Number(card.dataset.transactionId),
                            is_fraud: Number(button.dataset.label)}]};
    card.querySelectorAll("button").forEach(b => { b.disabled = true; });
    const answer = await fetch("../feedback", {method: "POST", headers: headers(), body: JSON.stringify(body)});
    if (answer.ok) {
      card.remove();
      const left = document.querySelectorAll(".case").length;
      document.getElementById("queue-count").textContent = String(left);
    } else {
      card.querySelector(".status").textContent = "feedback failed: " + answer.status;
      card.querySelectorAll("button").forEach(b => { b.disabled = false; });
    }
  }
  document.querySelectorAll("button[data-label]").forEach(b => b.addEventListener("click", () => label(b)));
  const form = document.getElementById("score-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = new FormData(form);
    const id = v => (/^-?\d+$/.test(v) ? Number(v) : v);
    const tx = {transaction_id: Number(f.get("transaction_id")), timestamp: f.get("timestamp"),
                customer_id: id(f.get("customer_id")), terminal_id: id(f.get("terminal_id")),
                amount: Number(f.get("amount"))};
    const answer = await fetch("../score?explain=true", {method: "POST", headers: headers(), body: JSON.stringify(tx)});
    document.getElementById("score-output").textContent = JSON.stringify(await answer.json(), null, 2);
  });
})();
