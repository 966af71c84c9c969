// Stage's own table parts.
const cn = (...names: unknown[]) => names.filter(Boolean).join(" ");
const part = (Tag: any, base: string) => ({ className, ...props }: any) => <Tag className={cn(base, className)} {...props} />;

export function Table({ className, ...props }: any) {
  return (
    <div className="relative w-full overflow-auto">
      <table className={cn("w-full caption-bottom text-sm", className)} {...props} />
    </div>
  );
}
export const TableHeader = part("thead", "[&_tr]:border-b");
export const TableBody = part("tbody", "[&_tr:last-child]:border-0");
export const TableFooter = part("tfoot", "border-t bg-slate-50 font-medium");
export const TableRow = part("tr", "border-b transition-colors hover:bg-slate-50");
export const TableHead = part("th", "h-12 px-4 text-left align-middle font-medium text-slate-500");
export const TableCell = part("td", "p-4 align-middle");
export const TableCaption = part("caption", "mt-4 text-sm text-slate-500");
