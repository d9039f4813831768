/**
 * `sluice mcp`: an MCP server on stdio for local clients (Claude Desktop, Cursor, VS Code) that
 * forwards every JSON-RPC message, both ways, to a running server's `/mcp` (Streamable HTTP),
 * both ends being the official SDK's transports: progress, log messages, cancellation and
 * stream resumption work through it as they do over HTTP. stdout carries JSON-RPC only;
 * diagnostics go to stderr. It ends (deleting its MCP session) when stdin closes.
 */
import type { Command } from 'commander';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { isJSONRPCRequest, isJSONRPCResultResponse, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { serverURL, withServerOption, type ConnectFlags } from '../internal/connect.js';
import { usageError } from '../internal/cli-error.js';
import { ExitCode } from '../internal/exit-codes.js';
import { reportError } from '../internal/report-error.js';

interface McpFlags extends ConnectFlags {
  apiKey?: string;
}

export function mcpCommand(program: Command): void {
  withServerOption(program.command('mcp').description('speak MCP on stdin/stdout, forwarding to a running server (a desktop client\'s code tool)'))
    .option('--api-key <key>', 'API key (default: $SLUICE_API_KEY, which is better: a flag shows in ps)')
    .action(async (flags: McpFlags) => {
      try {
        process.exitCode = await bridge(flags);
      } catch (err: unknown) {
        process.exitCode = reportError(err);
      }
    });
}

/** Runs until stdin closes; resolves with the exit code. */
async function bridge(flags: McpFlags): Promise<number> {
  const base = serverURL(flags);
  // Under the server's URL, path included (a server behind a proxy's prefix).
  const endpoint = URL.canParse(base) ? new URL(`${base.replace(/\/+$/, '')}/mcp`) : null;
  if (endpoint === null || (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:')) {
    throw usageError(`--url (or SLUICE_URL): expected an http(s) URL, got ${JSON.stringify(base)}`);
  }
  const apiKey = flags.apiKey ?? (process.env['SLUICE_API_KEY'] || undefined);
  const log = (text: string): void => void process.stderr.write(`sluice mcp: ${text}\n`);
  const http = new StreamableHTTPClientTransport(endpoint, {
    requestInit: apiKey === undefined ? {} : { headers: { Authorization: `Bearer ${apiKey}` } },
    // A cut stream is resumed (Last-Event-ID) a few times before the request is given up.
    reconnectionOptions: { initialReconnectionDelay: 500, maxReconnectionDelay: 5000, reconnectionDelayGrowFactor: 1.5, maxRetries: 5 },
  });
  const stdio = new StdioServerTransport();
  /** The initialize request's id: its answer names the protocol version every later request must carry. */
  let initializeID: string | number | undefined;

  const toClient = (message: JSONRPCMessage): void => {
    stdio.send(message).catch((err: Error) => log(`could not write to stdout: ${err.message}`));
  };
  http.onmessage = (message) => {
    if (initializeID !== undefined && isJSONRPCResultResponse(message) && message.id === initializeID) {
      const version = message.result['protocolVersion'];
      if (typeof version === 'string') http.setProtocolVersion(version);
      initializeID = undefined;
    }
    toClient(message);
  };
  // Every failure of the HTTP side comes here (a failed send too, before it rejects).
  http.onerror = (err) => log(`${endpoint.href}: ${err.message}`);
  stdio.onerror = (err) => log(`stdin: ${err.message}`);
  stdio.onmessage = (message) => {
    if (isJSONRPCRequest(message) && message.method === 'initialize') initializeID = message.id;
    http.send(message).catch((err: Error) => {
      // A request the server never got is answered here, or the client would wait for ever.
      if (isJSONRPCRequest(message)) toClient({ jsonrpc: '2.0', id: message.id, error: { code: -32000, message: `sluice mcp: ${endpoint.href}: ${err.message}` } });
    });
  };

  const closed = new Promise<void>((resolve) => {
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
    stdio.onclose = resolve;
  });
  await http.start();
  await stdio.start();
  await closed;
  // The server deletes the session (and its workspace) now rather than at its idle expiry.
  if (http.sessionId !== undefined) await http.terminateSession().catch((err: Error) => log(`could not end the session: ${err.message}`));
  await http.close();
  await stdio.close();
  return ExitCode.OK;
}
