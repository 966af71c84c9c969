// Stage's own form label.
export function Label({ className = "", ...props }: any) {
  return <label className={"text-sm font-medium leading-none " + className} {...props} />;
}
