// The Socket.IO peer for `showfloor-loadtest chat-storm|audience --socketio`: the minimal
// room broadcast a team would write instead of Showfloor. Every client joins one room; a
// "chat" event from any client is broadcast to the whole room (sender included), as
// Showfloor does. WebSocket transport only, no compression, the library's defaults otherwise.
//
//   node server.js [port]     (default 7890, 0 for any; prints "listening <port>" when ready)
"use strict";
const { Server } = require("socket.io");

const arg = process.argv[2] ?? process.env.PORT ?? "7890";
const port = Number(arg);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`not a port: ${arg}`);
  process.exit(2);
}
const io = new Server(port, {
  transports: ["websocket"],
  perMessageDeflate: false,
  serveClient: false,
  maxHttpBufferSize: 64 * 1024,
});

io.on("connection", (socket) => {
  socket.join("live");
  socket.on("chat", (msg) => {
    if (msg === null || typeof msg !== "object" || typeof msg.text !== "string") {
      socket.emit("error_event", { code: "bad_message", message: "chat needs {text}" });
      return;
    }
    io.to("live").emit("chat", { from: socket.id, text: msg.text });
  });
});

io.httpServer.on("listening", () => console.log(`listening ${io.httpServer.address().port}`));
process.on("SIGTERM", () => io.close(() => process.exit(0)));
