# scripts/ollama-setup, the set-up of the real Ollama, for Linux and
# macOS, without touching this machine: its PATH holds only stand-ins
# that record how they were called (curl, sh, sudo, mkdir, tee,
# systemctl, brew, launchctl, ollama, env, sleep) and the few harmless
# tools it reads with (sed, id), so anything else it tried to run would
# fail.  A dry run prints every step and runs none of them; a real run
# runs exactly the steps the dry run printed, in that order.
use strict;
use warnings;
use FindBin;
use Test::More;
use File::Temp ();

my $script = "$FindBin::Bin/../scripts/ollama-setup";
my $tmp = File::Temp->newdir();
my $bin = "$tmp/bin";
my $log = "$tmp/calls.log";
my $dropin = "$tmp/ollama.service.d";
my $sudo = $> == 0 ? '' : 'sudo ';

mkdir $bin or die $!;

sub stub {
    my ($name) = @_;
    open my $fh, '>', "$bin/$name" or die $!;
    # builtins only: a stand-in runs nothing
    print $fh <<'EOF';
#!/bin/bash
name=${0##*/}
if [ "$name" = sh ] || [ "$name" = tee ]; then
    input=
    while IFS= read -r line; do input+="  | $line"$'\n'; done
fi
{ printf '%s' "$name"; [ $# -eq 0 ] || printf ' %s' "$@"; printf '\n'; printf '%s' "${input:-}"; } >>"$SETUP_LOG"
exit 0
EOF
    close $fh;
    chmod 0755, "$bin/$name" or die $!;
}

stub($_) for qw(curl sh sudo mkdir tee systemctl brew launchctl env sleep);
for my $tool (qw(sed id)) {
    my ($path) = grep { -x } map { "$_/$tool" } qw(/usr/bin /bin);
    symlink $path, "$bin/$tool" or die $!;
}

# runs the script: { status, out, calls }
sub setup {
    my (%o) = @_;
    unlink $log;
    if ($o{ollama_installed}) { stub('ollama') } else { unlink "$bin/ollama" }
    local $ENV{PATH} = $bin;
    local $ENV{SETUP_LOG} = $log;
    local $ENV{OLLAMA_SETUP_SYSTEMD_DIR} = $dropin;
    my $args = join ' ', map { "'$_'" } @{ $o{args} };
    my $out = `/bin/bash '$script' $args 2>&1`;
    my $status = $? >> 8;
    my $calls = -e $log ? do { open my $fh, '<', $log or die $!; local $/; <$fh> } : '';
    return { status => $status, out => $out, calls => $calls };
}

# the commands a run printed ("+ ..." lines), without their comments
sub printed {
    my ($out) = @_;
    return join "\n", map { s/\s{2,}\(.*\)$//r } grep { s/^\+ // } split /\n/, $out;
}

my @settings = ('OLLAMA_HOST=127.0.0.1:11434', 'OLLAMA_NUM_PARALLEL=2',
                'OLLAMA_MAX_LOADED_MODELS=1', 'OLLAMA_KEEP_ALIVE=-1');

# --- Linux

my $r = setup(args => [qw(--dry-run --os linux --parallel 2 --model mistral:7b)]);
is($r->{status}, 0, 'linux dry run: exit 0') or diag($r->{out});
is($r->{calls}, '', 'linux dry run: nothing was executed');
ok(!-e $dropin, 'linux dry run: no drop-in directory was made');
is(printed($r->{out}), join("\n",
    "curl -fsSL https://ollama.com/install.sh | ${sudo}sh",
    "${sudo}mkdir -p $dropin",
    "write $dropin/10-seadragon.conf:",
    "${sudo}systemctl daemon-reload",
    "${sudo}systemctl enable ollama",
    "${sudo}systemctl restart ollama",
    "curl -fsS http://127.0.0.1:11434/api/version",
    "env OLLAMA_HOST=127.0.0.1:11434 ollama pull mistral:7b",
    "env OLLAMA_HOST=127.0.0.1:11434 ollama list"),
   'linux dry run: the official installer, the drop-in, the service, the pull, in order');
my $dropin_text = join "\n", "# written by Seadragon's scripts/ollama-setup", '[Service]',
                             map { "Environment=\"$_\"" } @settings;
like($r->{out}, qr/^\Q$_\E$/m, "linux dry run: shows the drop-in line $_")
    for map { "    $_" } split /\n/, $dropin_text;
like($r->{out}, qr/capacity=2 /, 'linux dry run: reminds that the gate capacity is 2');
my @steps = $r->{out} =~ /^==> (\d+)\. /mg;
is("@steps", "1 2 3 4 5 6", 'linux dry run: each step is announced, numbered');

$r = setup(args => [qw(--os linux --parallel 2 --model mistral:7b)]);
is($r->{status}, 0, 'linux run (stand-ins): exit 0') or diag($r->{out});
my $tee = join '', map { "  | $_\n" } split /\n/, $dropin_text;
is($r->{calls}, join('',
    "curl -fsSL https://ollama.com/install.sh\n",
    ($sudo ? "sudo sh\n" : "sh\n"),
    "${sudo}mkdir -p $dropin\n",
    "${sudo}tee $dropin/10-seadragon.conf\n", $tee,
    "${sudo}systemctl daemon-reload\n",
    "${sudo}systemctl enable ollama\n",
    "${sudo}systemctl restart ollama\n",
    "curl -fsS -m 2 http://127.0.0.1:11434/api/version\n",
    "env OLLAMA_HOST=127.0.0.1:11434 ollama pull mistral:7b\n",
    "env OLLAMA_HOST=127.0.0.1:11434 ollama list\n"),
   'linux run: runs what the dry run printed, in order, the drop-in as shown');

$r = setup(args => [qw(--os linux --no-pull)], ollama_installed => 1);
is($r->{status}, 0, 'linux run with ollama there: exit 0') or diag($r->{out});
like($r->{out}, qr/ollama is installed already/, 'an installed Ollama is not installed again');
unlike($r->{calls}, qr/install\.sh|ollama pull/, 'no installer, no pull with --no-pull');
like($r->{calls}, qr/^\Q${sudo}\Esystemctl restart ollama$/m, 'the service is restarted');

# --- macOS

$r = setup(args => [qw(--dry-run --os macos --parallel 2 --model mistral:7b)]);
is($r->{status}, 0, 'macos dry run: exit 0') or diag($r->{out});
is($r->{calls}, '', 'macos dry run: nothing was executed');
is(printed($r->{out}), join("\n",
    'brew install ollama',
    (map { my ($k, $v) = split /=/, $_, 2; "launchctl setenv $k $v" } @settings),
    'brew services restart ollama',
    'curl -fsS http://127.0.0.1:11434/api/version',
    'env OLLAMA_HOST=127.0.0.1:11434 ollama pull mistral:7b',
    'env OLLAMA_HOST=127.0.0.1:11434 ollama list'),
   'macos dry run: Homebrew, launchctl setenv, brew services, the pull, in order');

$r = setup(args => [qw(--os macos --parallel 2 --model mistral:7b)]);
is($r->{status}, 0, 'macos run (stand-ins): exit 0') or diag($r->{out});
is($r->{calls}, join('', map { "$_\n" }
    'brew install ollama',
    (map { my ($k, $v) = split /=/, $_, 2; "launchctl setenv $k $v" } @settings),
    'brew services restart ollama',
    'curl -fsS -m 2 http://127.0.0.1:11434/api/version',
    'env OLLAMA_HOST=127.0.0.1:11434 ollama pull mistral:7b',
    'env OLLAMA_HOST=127.0.0.1:11434 ollama list'),
   'macos run: runs what the dry run printed, in order, never sudo');

# --- defaults and options

$r = setup(args => [qw(-n --os linux)]);
like($r->{out}, qr/^    Environment="OLLAMA_NUM_PARALLEL=1"$/m, 'default: one generation at a time');
like($r->{out}, qr/^    Environment="OLLAMA_HOST=127\.0\.0\.1:11434"$/m, 'default: loopback');
like($r->{out}, qr/ollama pull llama3:70b$/m, 'default: llama3:70b');
unlike($r->{out}, qr/OLLAMA_ORIGINS/, 'default: Ollama\'s own origins');

$r = setup(args => ['-n', '--os', 'macos', '--port', '11500', '--keep-alive', '24h',
                    '--max-loaded-models', '2', '--origins', 'https://chat.example.com']);
is($r->{status}, 0, 'every option together') or diag($r->{out});
like($r->{out}, qr/^\+ launchctl setenv OLLAMA_HOST 127\.0\.0\.1:11500$/m, '--port');
like($r->{out}, qr/^\+ launchctl setenv OLLAMA_KEEP_ALIVE 24h$/m, '--keep-alive');
like($r->{out}, qr/^\+ launchctl setenv OLLAMA_MAX_LOADED_MODELS 2$/m, '--max-loaded-models');
like($r->{out}, qr{^\+ launchctl setenv OLLAMA_ORIGINS https://chat\.example\.com$}m, '--origins');
like($r->{out}, qr{^\+ curl -fsS http://127\.0\.0\.1:11500/api/version}m, 'waits on that port');

for my $bad (
    [ [qw(--parallel 0)], qr/--parallel is a number from 1 to 99/ ],
    [ [qw(--parallel x)], qr/--parallel is a number/ ],
    [ [qw(--os windows)], qr/--os is linux or macos/ ],
    [ ['--model', 'x; rm -rf /'], qr/--model is a model name/ ],
    [ ['--origins', 'https://a.example"'], qr/--origins is a comma-separated list/ ],
    [ [qw(--keep-alive soon)], qr/--keep-alive is a duration/ ],
    [ [qw(--port 70000)], qr/--port is a TCP port/ ],
    [ [qw(--model)], qr/--model needs a value/ ],
    [ [qw(--bogus)], qr/unknown option "--bogus"/ ],
) {
    my ($args, $message) = @$bad;
    $r = setup(args => ['--os', 'linux', @$args]);
    is($r->{status}, 2, "refused: @$args");
    like($r->{out}, $message, "refused with a reason: @$args");
    is($r->{calls}, '', "refused before running anything: @$args");
}

$r = setup(args => ['--help']);
is($r->{status}, 0, '--help');
like($r->{out}, qr/--parallel N\s+OLLAMA_NUM_PARALLEL/, '--help documents the options');

done_testing();
