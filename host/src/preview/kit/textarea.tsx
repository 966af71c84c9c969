// Stage's own textarea.
import { forwardRef } from "react";

export const Textarea = forwardRef<HTMLTextAreaElement, any>(function Textarea({ className = "", ...props }, ref) {
  return (
    <textarea
      ref={ref}
      className={"flex min-h-[80px] w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm placeholder:text-slate-400 focus:outline-none focus:ring-2 focus:ring-slate-400 " + className}
      {...props}
    />
  );
});
