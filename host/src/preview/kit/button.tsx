// Stage's own button, shadcn/ui's API: variant and size pick Tailwind classes.
import { forwardRef } from "react";

const cn = (...names: unknown[]) => names.filter(Boolean).join(" ");

const variants: Record<string, string> = {
  default: "bg-slate-900 text-white hover:bg-slate-800",
  destructive: "bg-red-600 text-white hover:bg-red-500",
  outline: "border border-slate-300 bg-white hover:bg-slate-100",
  secondary: "bg-slate-100 text-slate-900 hover:bg-slate-200",
  ghost: "hover:bg-slate-100",
  link: "text-slate-900 underline-offset-4 hover:underline",
};
const sizes: Record<string, string> = {
  default: "h-10 px-4 py-2",
  sm: "h-9 rounded-md px-3",
  lg: "h-11 rounded-md px-8",
  icon: "h-10 w-10",
};

export function buttonVariants({ variant = "default", size = "default", className = "" }: { variant?: string; size?: string; className?: string } = {}) {
  return cn(
    "inline-flex items-center justify-center gap-2 whitespace-nowrap rounded-md text-sm font-medium transition-colors disabled:pointer-events-none disabled:opacity-50",
    variants[variant] ?? variants.default,
    sizes[size] ?? sizes.default,
    className,
  );
}

export const Button = forwardRef<HTMLButtonElement, any>(function Button({ className, variant, size, ...props }, ref) {
  return <button ref={ref} className={buttonVariants({ variant, size, className })} {...props} />;
});

export default Button;
