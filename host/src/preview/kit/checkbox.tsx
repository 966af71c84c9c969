// Stage's own checkbox: onCheckedChange(checked) as shadcn/ui's.
export function Checkbox({ checked, defaultChecked, onCheckedChange, className = "", ...props }: any) {
  return (
    <input
      type="checkbox"
      checked={checked}
      defaultChecked={defaultChecked}
      onChange={(event) => onCheckedChange?.(event.target.checked)}
      className={"h-4 w-4 rounded border border-slate-400 accent-slate-900 " + className}
      {...props}
    />
  );
}
