// Stage's own switch: a button with role switch, onCheckedChange(checked).
import { useState } from "react";

export function Switch({ checked, defaultChecked = false, onCheckedChange, className = "", ...props }: any) {
  const [own, setOwn] = useState(defaultChecked);
  const on = checked ?? own;
  return (
    <button
      role="switch"
      aria-checked={on}
      onClick={() => {
        setOwn(!on);
        onCheckedChange?.(!on);
      }}
      className={"inline-flex h-6 w-11 items-center rounded-full transition-colors " + (on ? "bg-slate-900 " : "bg-slate-200 ") + className}
      {...props}
    >
      <span className={"block h-5 w-5 rounded-full bg-white shadow transition-transform " + (on ? "translate-x-5" : "translate-x-0.5")} />
    </button>
  );
}
