// Stage's own card: a bordered panel with header, title, description, content and footer.
import { forwardRef } from "react";

const cn = (...names: unknown[]) => names.filter(Boolean).join(" ");
const part = (tag: string, base: string, name: string) => {
  const Part = forwardRef<HTMLElement, any>(({ className, ...props }, ref) => {
    const Tag = tag as any;
    return <Tag ref={ref} className={cn(base, className)} {...props} />;
  });
  Part.displayName = name;
  return Part;
};

export const Card = part("div", "rounded-lg border border-slate-200 bg-white text-slate-950 shadow-sm", "Card");
export const CardHeader = part("div", "flex flex-col space-y-1.5 p-6", "CardHeader");
export const CardTitle = part("h3", "text-2xl font-semibold leading-none tracking-tight", "CardTitle");
export const CardDescription = part("p", "text-sm text-slate-500", "CardDescription");
export const CardContent = part("div", "p-6 pt-0", "CardContent");
export const CardFooter = part("div", "flex items-center p-6 pt-0", "CardFooter");
