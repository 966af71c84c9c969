// Stage's own separator line.
export function Separator({ className = "", orientation = "horizontal", ...props }: any) {
  const size = orientation === "vertical" ? "h-full w-px" : "h-px w-full";
  return <div role="separator" className={"shrink-0 bg-slate-200 " + size + " " + className} {...props} />;
}
