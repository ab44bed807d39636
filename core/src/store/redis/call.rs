//! One call of a keel script, built straight into one command.

use ::redis::aio::ConnectionLike;
use ::redis::{Cmd, ErrorKind, RedisResult, Script, ServerErrorKind, ToRedisArgs, Value};

/// `EVALSHA <hash> <number of keys> <keys…> <arguments…>`, sent again after `SCRIPT LOAD` when
/// Redis answers NOSCRIPT (a restart lost its script cache): the commands redis-rs'
/// `ScriptInvocation::invoke_async` sends. The invocation keeps each key and argument in a `Vec`
/// of its own and copies them all into the command when it is sent; this writes each once, into
/// the command's one buffer. A batch of job-map transactions is up to ~1 000 arguments, and the
/// copies, allocations and frees were ~5 % of a pool node's CPU.
pub(super) struct Call<'a> {
    script: &'a Script,
    cmd: Cmd,
}

impl<'a> Call<'a> {
    pub fn new(script: &'a Script, keys: &[String]) -> Self {
        let mut cmd = ::redis::cmd("EVALSHA");
        cmd.arg(script.get_hash()).arg(keys.len());
        for key in keys {
            cmd.arg(key);
        }
        Call { script, cmd }
    }

    /// One more argument (`ARGV[i]` in the script).
    pub fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// The `EVALSHA` command, for a pipeline (which loads nothing by itself on NOSCRIPT).
    pub fn into_command(self) -> Cmd {
        self.cmd
    }

    pub async fn invoke(&self, conn: &mut impl ConnectionLike) -> RedisResult<Value> {
        match self.cmd.query_async(conn).await {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.script.load_async(conn).await?;
                self.cmd.query_async(conn).await
            }
            r => r,
        }
    }
}
