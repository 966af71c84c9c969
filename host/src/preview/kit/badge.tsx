// Stage's own badge.
const cn = (...names: unknown[]) => names.filter(Boolean).join(" ");
const variants: Record<string, string> = {
  default: "border-transparent bg-slate-900 text-white",
  secondary: "border-transparent bg-slate-100 text-slate-900",
  destructive: "border-transparent bg-red-600 text-white",
  outline: "text-slate-950",
};

export function badgeVariants({ variant = "default" }: { variant?: string } = {}) {
  return cn("inline-flex items-center rounded-full border px-2.5 py-0.5 text-xs font-semibold", variants[variant] ?? variants.default);
}

export function Badge({ className, variant, ...props }: any) {
  return <div className={cn(badgeVariants({ variant }), className)} {...props} />;
}
