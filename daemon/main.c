// SPDX-License-Identifier: MIT
/* bpftimed: the daemon that watches every eBPF tool and offloads its uprobes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "manager.h"

/* sysexits.h's EX_CONFIG, as systemd uses it: the unit's RestartPreventExitStatus=. */
#define EXIT_CONFIG 78

static void help(void)
{
	printf("Usage: bpftimed [OPTIONS]\n\n"
	       "Watches every eBPF program, map and uprobe on the system.\n\n"
	       "  -h --help             show this help\n"
	       "     --version          show the version\n"
	       "     --config=PATH      configuration file (default " BPFTIMED_CONFIG_PATH ");\n"
	       "                        drop-ins are read from PATH.d/*.conf\n"
	       "     --log-level=LEVEL  debug, info, notice, warning, err (default info);\n"
	       "                        overrides LogLevel= in the configuration\n"
	       "     --agent-socket=PATH  where agents connect (default " BPFTIMED_AGENT_SOCKET ")\n"
	       "     --agent-library=PATH the agent injected into traced processes\n"
	       "                          (default " BPFTIMED_AGENT_LIBRARY ")\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "agent-socket", required_argument, NULL, 's' },
		{ "agent-library", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = BPFTIMED_CONFIG_PATH;
	const char *agent_socket = BPFTIMED_AGENT_SOCKET, *agent_library = BPFTIMED_AGENT_LIBRARY;
	struct manager *m = NULL;
	int c, level = -1, r;

	log_setup();
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			help();
			return 0;
		case 'V':
			printf("bpftimed %s\n", BPFTIMED_VERSION);
			return 0;
		case 'c':
			if (!*optarg) {
				log_error("--config= needs a path.");
				return 2;
			}
			config_path = optarg;
			break;
		case 's':
			agent_socket = optarg;
			break;
		case 'a':
			agent_library = optarg;
			break;
		case 'l':
			level = log_level_from_string(optarg);
			if (level < 0) {
				log_error("Unknown log level '%s'.", optarg);
				return 2;
			}
			log_set_max_level(level);
			break;
		default:
			return 2;
		}
	}
	if (optind != argc) {
		log_error("bpftimed takes no arguments.");
		return 2;
	}

	r = manager_new(&m, config_path, level);
	if (r < 0)
		return EXIT_FAILURE;
	m->agent_socket = agent_socket;
	m->agent_library = agent_library;
	/* Refuse to start on a configuration we cannot read rather than serve the wrong binaries. */
	r = manager_load_config(m);
	if (r < 0) {
		manager_free(m);
		return EXIT_CONFIG;
	}
	r = manager_startup(m);
	if (r >= 0)
		r = manager_run(m);
	manager_free(m);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
