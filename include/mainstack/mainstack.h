/* mainstack.h - everything public, in one include. */
#ifndef MAINSTACK_MAINSTACK_H
#define MAINSTACK_MAINSTACK_H

#include "mainstack/version.h"
#include "mainstack/status.h"
#include "mainstack/log.h"
#include "mainstack/json.h"
#include "mainstack/schema.h"
#include "mainstack/message.h"
#include "mainstack/semver.h"
#include "mainstack/context.h"
#include "mainstack/agent.h"
#include "mainstack/check.h"
#include "mainstack/subject.h"
#include "mainstack/bus.h"
#include "mainstack/component.h"
#include "mainstack/runtime.h"
#include "mainstack/stream.h"
#include "mainstack/registry.h"
#include "mainstack/deploy.h"
#include "mainstack/proc.h"

#endif
