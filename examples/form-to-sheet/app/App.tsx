import { useState } from "react";

// A payment form whose submissions land as rows of the app's Google Sheet, through the
// `appendWebhookRow` workflow (see shift.workflows.json).
export default function App() {
  const [email, setEmail] = useState("");
  const [amount, setAmount] = useState("");
  const [status, setStatus] = useState<string | null>(null);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    const params = new URLSearchParams(window.location.search);
    const answer = await fetch(`/api/v1/run/${params.get("app")}/appendWebhookRow`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        input: {
          spreadsheetId: params.get("sheet"),
          range: "Events!A:G",
          customerEmail: email,
          amountCents: Math.round(Number(amount) * 100),
        },
      }),
    });
    const body = await answer.json();
    setStatus(answer.ok ? `Saved in ${body.updatedRange}` : body.error?.message ?? "Failed");
  }

  return (
    <form onSubmit={submit}>
      <h1>Payment</h1>
      <input type="email" placeholder="Email" value={email} onChange={(e) => setEmail(e.target.value)} required />
      <input type="number" step="0.01" placeholder="Amount" value={amount} onChange={(e) => setAmount(e.target.value)} required />
      <button type="submit">Send</button>
      {status && <p>{status}</p>}
    </form>
  );
}
