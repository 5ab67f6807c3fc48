import { bootGuest } from "./guest.js";
const g = await bootGuest();
console.log("BOOTED", process.pid);
await new Promise(() => {});
void g;
