// Stage's own tabs: Tabs holds the selected value (controlled or not), triggers set it.
import { createContext, useContext, useState } from "react";

const cn = (...names: unknown[]) => names.filter(Boolean).join(" ");
const TabsContext = createContext<{ value: string; setValue: (v: string) => void }>({ value: "", setValue: () => {} });

export function Tabs({ defaultValue = "", value, onValueChange, className, children, ...props }: any) {
  const [own, setOwn] = useState(defaultValue);
  const current = value ?? own;
  const setValue = (v: string) => {
    setOwn(v);
    onValueChange?.(v);
  };
  return (
    <TabsContext.Provider value={{ value: current, setValue }}>
      <div className={className} {...props}>{children}</div>
    </TabsContext.Provider>
  );
}
export function TabsList({ className, ...props }: any) {
  return <div role="tablist" className={cn("inline-flex h-10 items-center rounded-md bg-slate-100 p-1 text-slate-500", className)} {...props} />;
}
export function TabsTrigger({ value, className, ...props }: any) {
  const tabs = useContext(TabsContext);
  const active = tabs.value === value;
  return (
    <button
      role="tab"
      aria-selected={active}
      onClick={() => tabs.setValue(value)}
      className={cn("inline-flex items-center rounded-sm px-3 py-1.5 text-sm font-medium", active && "bg-white text-slate-950 shadow-sm", className)}
      {...props}
    />
  );
}
export function TabsContent({ value, className, ...props }: any) {
  const tabs = useContext(TabsContext);
  return tabs.value === value ? <div role="tabpanel" className={cn("mt-2", className)} {...props} /> : null;
}
