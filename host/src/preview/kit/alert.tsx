// Stage's own alert box.
const cn = (...names: unknown[]) => names.filter(Boolean).join(" ");

export function Alert({ className, variant = "default", ...props }: any) {
  const tone = variant === "destructive" ? "border-red-500/50 text-red-600" : "border-slate-200 text-slate-950";
  return <div role="alert" className={cn("relative w-full rounded-lg border p-4", tone, className)} {...props} />;
}
export function AlertTitle({ className, ...props }: any) {
  return <h5 className={cn("mb-1 font-medium leading-none tracking-tight", className)} {...props} />;
}
export function AlertDescription({ className, ...props }: any) {
  return <div className={cn("text-sm", className)} {...props} />;
}
