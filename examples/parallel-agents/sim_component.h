/*
 * sim_component.h - a simulated component for the parallel-agents example
 * and the agents benchmark: its context and agent-config written to a
 * project root, so a real ms_agent can run it.
 */
#ifndef MS_SIM_COMPONENT_H
#define MS_SIM_COMPONENT_H

#include <stdbool.h>
#include <stddef.h>

/* Write <root>/components/<name>/context/{context.json,agent-config.json}
 * (directories made): a component whose agent acts on every interface
 * change (or only on those of `iface`, when not NULL) and dependency update (autonomy major when
 * autonomous, observe, which escalates instead, when not) and whose change action is `sleep WORK`
 * (work_ms, the agent's simulated work: started from argv like any action). dir (cap bytes) gets
 * the component directory. 0 on success, -1 with errno set. */
int sim_component_write(const char *root, const char *name, const char *iface, bool autonomous,
                        int work_ms, const char *action, char *dir, size_t cap);

#endif
