# make install and make uninstall (scripts/seadragon-install) into a
# temporary root (DESTDIR): Debian's nginx layout, the load file and its
# modules-enabled symlink, the tool, the example, the admin page and the
# store; Debian's nginx -t loading the installed module through the
# installed load file with the installed example; and an uninstall that
# leaves the root as it found it, except a store that holds data.
use strict;
use warnings;
use FindBin;
use Test::More;
use File::Temp ();
use File::Find ();
use IO::Socket::INET;

my $root = "$FindBin::Bin/..";
my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
# the module built for that nginx (make test passes its build folder, and
# the nginx tree it was configured against)
my $build = $ENV{SEADRAGON_BUILD} || "$root/build";
# (all three, or make configures that build again, for other flags)
my $make_vars = "BUILD='$build'"
    . ($ENV{SEADRAGON_NGINX_SRC} ? " NGINX_SRC='$ENV{SEADRAGON_NGINX_SRC}'" : '')
    . ($ENV{SEADRAGON_NGINX_EXTRA_FLAGS}
       ? " NGINX_EXTRA_FLAGS='$ENV{SEADRAGON_NGINX_EXTRA_FLAGS}'" : '');

for my $built ("$build/ngx_seadragon_module.so", "$build/seadragon-store") {
    plan skip_all => "$built is not built: run make" unless -e $built;
}

sub slurp { my ($f) = @_; open my $fh, '<', $f or die "$f: $!"; local $/; scalar <$fh> }
sub spew { my ($f, $c) = @_; open my $fh, '>', $f or die "$f: $!"; print $fh $c; close $fh }

# every path under a directory, and what each is
sub tree {
    my ($dir) = @_;
    my @paths;
    File::Find::find({ no_chdir => 1, wanted => sub {
        return if $_ eq $dir;
        my $kind = -l $_ ? 'link' : -d _ ? 'dir' : 'file';
        push @paths, substr($_, length $dir) . " ($kind)";
    } }, $dir);
    return join "\n", sort @paths;
}

sub make_target {
    my ($target, $destdir) = @_;
    my $out = `make -s -C '$root' $target $make_vars DESTDIR='$destdir' 2>&1`;
    return ($? >> 8, $out);
}

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp') or die $!;
    return $s->sockport;
}

my $tmp = File::Temp->newdir();
my $dest = "$tmp/root";

# as on a real system, nginx's workers (nobody, as root) can reach the
# staged store: nginx -t checks that they can
chmod 0755, "$tmp" or die $!;

# what is there before: an nginx.conf and a conf.d of someone else's
mkdir $dest; mkdir "$dest/etc"; mkdir "$dest/etc/nginx"; mkdir "$dest/etc/nginx/conf.d";
spew("$dest/etc/nginx/nginx.conf", "# theirs\n");
spew("$dest/etc/nginx/conf.d/other.conf", "# theirs too\n");
my $before = tree($dest);

my ($status, $out) = make_target('install', $dest);
is($status, 0, 'make install succeeds') or diag($out);

my $so = "$dest/usr/lib/nginx/modules/ngx_seadragon_module.so";
my $load = "$dest/usr/share/nginx/modules-available/mod-http-seadragon.conf";
my $link = "$dest/etc/nginx/modules-enabled/50-mod-http-seadragon.conf";
my $tool = "$dest/usr/sbin/seadragon-store";
my $example = "$dest/etc/nginx/conf.d/seadragon.conf.example";
my $page = "$dest/usr/share/seadragon/html/admin.html";
my $store = "$dest/var/lib/seadragon/store";

ok(-f $so && slurp($so) eq slurp("$build/ngx_seadragon_module.so"),
   'the module is in /usr/lib/nginx/modules, as built');
is((stat $so)[2] & 07777, 0644, 'the module is mode 644');
is(slurp($load), "load_module modules/ngx_seadragon_module.so;\n",
   'modules-available has the load file, with the packages\' relative path');
ok(-l $link, 'modules-enabled has a symlink');
is(readlink($link), '/usr/share/nginx/modules-available/mod-http-seadragon.conf',
   'the symlink points to the load file as the system will see it');
ok(-x $tool, 'the tool is in /usr/sbin');
is(slurp($example), slurp("$root/conf/seadragon.conf"),
   'the example is in conf.d as .example, unchanged with the default paths');
is(slurp($page), slurp("$root/conf/html/admin.html"),
   'the admin page is where the example serves it from');
is(slurp("$dest/usr/share/seadragon/html/chat.html"), slurp("$root/conf/html/chat.html"),
   'the chat page is where the TLS example serves it from');
ok(-f "$store/data.mdb", 'an empty store is created where the example points');
is(`'$tool' --store '$store' whitelist list 2>&1`, '', 'the installed tool reads it');
is($?, 0, 'the installed tool reads it: exit 0');
ok(!grep({ m{/conf\.d/[^/]*\.conf$} && !m{/other\.conf$} } glob "$dest/etc/nginx/conf.d/*"),
   'nothing is enabled in conf.d');

# Debian's nginx, with its prefix layout (modules/ leads to the modules
# directory), loads the module through the installed load file and tests
# the installed example; its paths moved into the temporary root and its
# port to a free one
{
    my $p = "$tmp/prefix";
    mkdir $p; mkdir "$p/logs";
    symlink "$dest/usr/lib/nginx/modules", "$p/modules" or die $!;

    my $conf = slurp($example);
    my $port = free_port();
    $conf =~ s{listen\s+127\.0\.0\.1:8080;}{listen 127.0.0.1:$port;} or die 'no listen';
    $conf =~ s{/var/log/nginx/}{$p/logs/}g;
    $conf =~ s{/var/lib/seadragon/store}{$store}g;
    $conf =~ s{/usr/share/seadragon/html/}{$dest/usr/share/seadragon/html/}g;
    spew("$p/seadragon.conf", $conf);

    my $main = <<"EOF";
include $dest\@LOAD\@;
error_log $p/logs/error.log;
pid $p/logs/nginx.pid;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    access_log $p/logs/access.log;
    client_body_temp_path $p/body;
    proxy_temp_path $p/proxy;
    fastcgi_temp_path $p/fastcgi;
    uwsgi_temp_path $p/uwsgi;
    scgi_temp_path $p/scgi;
    include $p/seadragon.conf;
}
EOF
    (my $with = $main) =~ s/\@LOAD\@/readlink($link)/e;
    spew("$p/nginx.conf", $with);

    my $t = `'$nginx' -t -p '$p/' -c '$p/nginx.conf' 2>&1`;
    is($? >> 8, 0, 'nginx -t passes with the installed module and example') or diag($t);
    like($t, qr/test is successful/, 'nginx -t: test is successful');

    (my $without = $main) =~ s/^include .*\@LOAD\@;\n//m;
    spew("$p/nginx.conf", $without);
    $t = `'$nginx' -t -p '$p/' -c '$p/nginx.conf' 2>&1`;
    like($t, qr/unknown directive "seadragon_store"/,
         'without the load file the example does not pass: the module is what passes');
}

# a second install changes nothing of the record
($status, $out) = make_target('install', $dest);
is($status, 0, 'a second make install succeeds') or diag($out);
my @record = split /\n/, slurp("$dest/usr/share/seadragon/installed");
my %seen;
is(scalar(grep { $seen{$_}++ } @record), 0, 'the install record has no line twice');
ok(!grep({ m{^d /etc(/nginx(/conf\.d)?)?$} } @record),
   'directories that were there are not in the record');

($status, $out) = make_target('uninstall', $dest);
is($status, 0, 'make uninstall succeeds') or diag($out);
like($out, qr/removed the empty store/, 'the empty store it created is removed');
is(tree($dest), $before, 'uninstall leaves the root as it was before install');
is(slurp("$dest/etc/nginx/conf.d/other.conf"), "# theirs too\n", 'other files are untouched');

($status, $out) = make_target('uninstall', $dest);
is($status, 0, 'a second uninstall is harmless');
like($out, qr/nothing to remove/, 'and says there is nothing to remove');

# a store that holds data survives an uninstall
{
    my $dest2 = "$tmp/root2";
    mkdir $dest2;
    ($status, $out) = make_target('install', $dest2);
    is($status, 0, 'install into a second root') or diag($out);

    my $tool2 = "$dest2/usr/sbin/seadragon-store";
    my $store2 = "$dest2/var/lib/seadragon/store";
    my $r = `'$tool2' --store '$store2' whitelist add 192.0.2.7 2>&1`;
    is($?, 0, 'the installed tool writes the installed store') or diag($r);

    ($status, $out) = make_target('uninstall', $dest2);
    is($status, 0, 'uninstall succeeds') or diag($out);
    like($out, qr/kept the store \S+: it holds whitelist entries or keys/,
         'a store with data is kept, and said so');
    like(`'$build/seadragon-store' --store '$store2' whitelist list 2>&1`,
       qr/^192\.0\.2\.7\t/, 'its entries are intact');
    is(tree($dest2), join("\n", sort map { "$_ (" . ($_ =~ /mdb$/ ? 'file' : 'dir') . ")" }
                          qw(/var /var/lib /var/lib/seadragon /var/lib/seadragon/store
                             /var/lib/seadragon/store/data.mdb /var/lib/seadragon/store/lock.mdb)),
       'the store (and the directories holding it) is all that is left');
}

done_testing();
