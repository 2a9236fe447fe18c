/** Every route of the Worker, in one place (the paths tagged `worker` in contract/openapi.yaml). */
import { complete } from "./handlers/complete";
import { health } from "./handlers/health";
import type { Route } from "./router";

export const routes: readonly Route[] = [
  { method: "GET", path: "/healthz", handler: health },
  { method: "POST", path: "/v1/complete", handler: complete },
];
