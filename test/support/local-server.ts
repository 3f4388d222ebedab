// A local HTTP server for the AWS fakes (refresh-fake.ts, ssm-fake.ts): on
// 127.0.0.1, a free port, a handler's failure answered as a 500.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export async function startLocalServer(handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  return { server, url: `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}` };
}

export async function stopLocalServer(server: Server | undefined): Promise<void> {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
}
