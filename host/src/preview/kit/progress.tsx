// Stage's own progress bar (value 0-100).
export function Progress({ value = 0, className = "", ...props }: any) {
  const clamped = Math.max(0, Math.min(100, Number(value) || 0));
  return (
    <div role="progressbar" aria-valuenow={clamped} className={"relative h-4 w-full overflow-hidden rounded-full bg-slate-100 " + className} {...props}>
      <div className="h-full bg-slate-900 transition-all" style={{ width: `${clamped}%` }} />
    </div>
  );
}
