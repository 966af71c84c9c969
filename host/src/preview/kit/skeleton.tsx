// Stage's own loading placeholder.
export function Skeleton({ className = "", ...props }: any) {
  return <div className={"animate-pulse rounded-md bg-slate-100 " + className} {...props} />;
}
