// Stage's own text input.
import { forwardRef } from "react";

export const Input = forwardRef<HTMLInputElement, any>(function Input({ className = "", type, ...props }, ref) {
  return (
    <input
      type={type}
      ref={ref}
      className={"flex h-10 w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm placeholder:text-slate-400 focus:outline-none focus:ring-2 focus:ring-slate-400 disabled:opacity-50 " + className}
      {...props}
    />
  );
});
