import { Client, type ConnectConfig, type SFTPWrapper } from 'ssh2';

export interface SshTarget {
  host: string;
  port?: number;
  user: string;
}

export interface SshCredentials {
  privateKey?: Buffer;
  password?: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** One SSH connection (library ssh2): run commands, upload files. */
export class SshSession {
  private constructor(private readonly client: Client) {}

  static connect(target: SshTarget, creds: SshCredentials, timeoutMs = 10_000): Promise<SshSession> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      const config: ConnectConfig = {
        host: target.host,
        port: target.port ?? 22,
        username: target.user,
        privateKey: creds.privateKey,
        password: creds.password,
        readyTimeout: timeoutMs,
        tryKeyboard: false,
      };
      client.once('ready', () => resolve(new SshSession(client)));
      client.once('error', (err) => reject(new Error(`ssh ${target.user}@${target.host}: ${err.message}`)));
      client.connect(config);
    });
  }

  exec(command: string, timeoutMs = 60_000): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ssh command timed out: ${command}`)), timeoutMs);
      this.client.exec(command, (err, stream) => {
        if (err) { clearTimeout(timer); return reject(err); }
        let stdout = '', stderr = '';
        stream.on('data', (d: Buffer) => { stdout += d.toString(); });
        stream.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
        stream.on('close', (code: number | null) => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr }); });
      });
    });
  }

  /** Runs a command and fails with its stderr unless it exits 0. */
  async run(command: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(command, timeoutMs);
    if (r.code !== 0) throw new Error(`${command.split(' ')[0]} failed (${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
    return r.stdout;
  }

  private sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => this.client.sftp((err, s) => (err ? reject(err) : resolve(s))));
  }

  async upload(localPath: string, remotePath: string): Promise<void> {
    const sftp = await this.sftp();
    await new Promise<void>((resolve, reject) => sftp.fastPut(localPath, remotePath, (err) => (err ? reject(err) : resolve())));
    sftp.end();
  }

  async writeFile(remotePath: string, content: string, mode = 0o600): Promise<void> {
    const sftp = await this.sftp();
    await new Promise<void>((resolve, reject) => sftp.writeFile(remotePath, content, { mode }, (err) => (err ? reject(err) : resolve())));
    sftp.end();
  }

  close(): void {
    this.client.end();
  }
}
